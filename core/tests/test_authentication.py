import pytest
from django.core.management import CommandError, call_command

from core.access import Scope
from core.models import ApiKey, AuditEntry
from core.services import api_key_create, api_key_revoke


@pytest.mark.django_db
def test_it_prints_a_working_key_as_the_last_line(client, capsys):
    call_command(
        "create_api_key", "checkout-service", "--scope", "events:write", "--scope", "decisions:read"
    )
    raw_key = capsys.readouterr().out.strip().splitlines()[-1]

    response = client.get("/api/v1/whoami/", HTTP_AUTHORIZATION=f"Api-Key {raw_key}")

    assert response.status_code == 200
    assert response.json()["kind"] == "api_key"
    assert response.json()["name"] == "checkout-service"
    assert response.json()["scopes"] == ["decisions:read", "events:write"]
    assert response.json()["last_used_at"] is not None
    created = AuditEntry.objects.get(action="api_key.create")
    assert created.after["scopes"] == ["decisions:read", "events:write"]
    assert created.after["all_scopes"] is False


@pytest.mark.django_db
def test_it_refuses_an_unknown_scope_and_creates_nothing(capsys):
    with pytest.raises(CommandError, match="Unknown scope"):
        call_command("create_api_key", "typo-service", "--scope", "events:wrte")

    assert not ApiKey.objects.exists()
    assert not AuditEntry.objects.exists()


@pytest.mark.django_db
def test_a_key_granted_every_scope_is_audited_as_such(capsys):
    call_command("create_api_key", "ops", "--scope", "all")

    entry = AuditEntry.objects.get(action="api_key.create")
    assert entry.after["all_scopes"] is True
    assert sorted(entry.after["scopes"]) == sorted(Scope)


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
    assert response.json()["kind"] == "user"
    assert response.json()["name"] == "staff"
    assert sorted(response.json()["scopes"]) == sorted(Scope)  # a superuser holds every scope


@pytest.mark.django_db
def test_revoking_an_unknown_prefix_says_so_and_writes_nothing():
    with pytest.raises(CommandError, match="No API key with prefix nope"):
        call_command("revoke_api_key", "nope")

    assert not AuditEntry.objects.exists()


@pytest.mark.django_db
def test_revoking_a_key_twice_is_audited_once():
    api_key, _ = api_key_create(name="twice", scopes=[])

    api_key_revoke(prefix=api_key.prefix)
    api_key_revoke(prefix=api_key.prefix)

    assert AuditEntry.objects.filter(action="api_key.revoke").count() == 1
