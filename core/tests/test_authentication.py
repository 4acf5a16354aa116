import pytest
from django.core.management import call_command

from core.models import AuditEntry
from core.services import api_key_revoke


@pytest.mark.django_db
def test_it_prints_a_working_key_as_the_last_line(client, capsys):
    call_command("create_api_key", "checkout-service")
    raw_key = capsys.readouterr().out.strip().splitlines()[-1]

    response = client.get("/api/v1/whoami/", HTTP_AUTHORIZATION=f"Api-Key {raw_key}")

    assert response.status_code == 200
    assert response.json() == {"kind": "api_key", "name": "checkout-service"}
    assert AuditEntry.objects.filter(action="api_key.create").count() == 1


@pytest.mark.django_db
def test_it_stores_only_the_hash_of_a_key(api_key):
    key, raw_key = api_key
    assert raw_key.split(".")[1] not in key.hashed_key
    assert key.hashed_key != raw_key


@pytest.mark.django_db
def test_it_stops_accepting_a_revoked_key(client, api_key):
    key, raw_key = api_key
    api_key_revoke(prefix=key.prefix)

    response = client.get("/api/v1/whoami/", HTTP_AUTHORIZATION=f"Api-Key {raw_key}")

    assert response.status_code == 401


@pytest.mark.django_db
def test_it_accepts_a_logged_in_browser_session(staff_client):
    response = staff_client.get("/api/v1/whoami/")
    assert response.json() == {"kind": "user", "name": "staff"}
