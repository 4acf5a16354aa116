"""Admin for API keys (keys:manage) and the audit trail (audit:read)."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.contrib.messages import get_messages
from django.utils import timezone

from core.models import ApiKey, AuditEntry
from core.services import api_key_create

pytestmark = pytest.mark.django_db

KEYS = "/admin/core/apikey/"
AUDIT = "/admin/core/auditentry/"


@pytest.fixture
def person_in(client, django_user_model):
    """A client logged in as a staff member holding only this role."""

    def log_in(role: str):
        user = django_user_model.objects.create_user(username=role, is_staff=True)
        user.groups.add(Group.objects.get(name=role))
        client.force_login(user)
        return user

    return log_in


def test_a_key_manager_creates_a_key_sees_it_once_and_the_creation_is_audited(client, person_in):
    admin_user = person_in("admin")

    response = client.post(
        f"{KEYS}add/", {"name": "checkout", "scopes": ["events:write", "decisions:read"]}
    )

    assert response.status_code == 302
    api_key = ApiKey.objects.get()
    assert api_key.scopes == ["decisions:read", "events:write"]
    entry = AuditEntry.objects.get(action="api_key.create")
    assert (entry.actor, entry.after["scopes"]) == (admin_user, api_key.scopes)
    shown = [str(message) for message in get_messages(response.wsgi_request)]
    raw_key = shown[0].split(" is: ")[1].split(" ")[0]
    assert raw_key.startswith(api_key.prefix)
    whoami = client.get("/api/v1/whoami/", HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    assert whoami.json()["scopes"] == ["decisions:read", "events:write"]


def test_it_lists_each_keys_scopes_and_last_use(client, person_in):
    api_key, _ = api_key_create(name="reporting", scopes=["records:read"])
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=timezone.now())
    person_in("admin")

    page = client.get(KEYS).content.decode()

    assert "records:read" in page
    assert "column-scope_list" in page
    assert "column-last_used_at" in page
    last_used = re.search(r'class="field-last_used_at[^"]*">([^<]*)<', page)
    assert last_used is not None
    assert last_used.group(1).strip() not in ("", "-")


def test_it_refuses_an_expiry_in_the_past_naming_the_field_and_writes_nothing(client, person_in):
    person_in("admin")
    yesterday = (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%d")

    response = client.post(
        f"{KEYS}add/",
        {
            "name": "late",
            "scopes": ["predict"],
            "expiry_date_0": yesterday,
            "expiry_date_1": "10:00",
        },
    )

    assert response.status_code == 200
    assert "expiry_date" in response.context["adminform"].form.errors
    assert not ApiKey.objects.exists()
    assert not AuditEntry.objects.exists()


def test_revoking_from_admin_is_audited_and_the_key_stops_working(client, person_in):
    api_key, raw_key = api_key_create(name="leaked", scopes=["predict"])
    admin_user = person_in("admin")

    response = client.post(KEYS, {"action": "revoke_keys", "_selected_action": [api_key.pk]})

    assert response.status_code == 302
    api_key.refresh_from_db()
    assert api_key.revoked
    entry = AuditEntry.objects.get(action="api_key.revoke")
    assert entry.actor == admin_user
    whoami = client.get("/api/v1/whoami/", HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    assert whoami.status_code == 401


def test_keys_are_never_edited_or_deleted_in_admin(client, person_in):
    api_key, _ = api_key_create(name="steady", scopes=["predict"])
    person_in("admin")

    client.post(f"{KEYS}{api_key.pk}/change/", {"name": "renamed", "revoked": "on"})
    deleted = client.post(f"{KEYS}{api_key.pk}/delete/", {"post": "yes"})

    api_key.refresh_from_db()
    assert (api_key.name, api_key.revoked) == ("steady", False)
    assert deleted.status_code == 403


@pytest.mark.parametrize("role", ["analyst", "rule editor", "campaign manager", "compliance"])
def test_staff_without_keys_manage_cannot_see_or_create_keys(client, person_in, role):
    person_in(role)

    assert client.get(KEYS).status_code == 403
    assert client.post(f"{KEYS}add/", {"name": "sneaky", "scopes": ["pii:read"]}).status_code == 403
    assert not ApiKey.objects.exists()


def test_compliance_reads_the_audit_trail_and_nobody_changes_it(client, person_in):
    api_key_create(name="traced", scopes=[])
    entry = AuditEntry.objects.get()
    person_in("compliance")

    assert client.get(AUDIT).status_code == 200
    assert client.get(f"{AUDIT}{entry.pk}/change/").status_code == 200
    assert client.post(f"{AUDIT}{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AuditEntry.objects.count() == 1


@pytest.mark.parametrize("role", ["analyst", "rule editor", "campaign manager", "rule approver"])
def test_the_audit_trail_is_hidden_from_roles_without_audit_read(client, person_in, role):
    person_in(role)

    assert client.get(AUDIT).status_code == 403


def test_the_admin_index_shows_a_role_only_what_it_may_open(client, person_in):
    person_in("compliance")

    page = client.get("/admin/").content.decode()

    assert AUDIT in page
    assert KEYS not in page
    assert "/admin/auth/user/" not in page
