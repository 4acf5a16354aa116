"""Who may call which campaigns endpoint, who sees numbers and bodies, and who may undo a STOP."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from campaigns import services
from campaigns.models import CampaignJob, ConsentEvent, Contact, Message
from campaigns.tests.factories import (
    campaign_config,
    campaign_factory,
    contact_factory,
    contact_stopped_factory,
)
from core.access import ALL_SCOPES, Scope
from core.models import AuditEntry

pytestmark = pytest.mark.django_db

PHONE = "+14155552671"
MASKED = "+1 4•••• ••671"
CONTACT = "/api/v1/contacts/%2B14155552671"

# (method, URL, body, the one scope it needs); {campaign} and {message} are filled in.
ENDPOINTS = [
    ("get", "/api/v1/contacts/", None, Scope.CONTACTS_READ),
    ("get", f"{CONTACT}/", None, Scope.CONTACTS_READ),
    ("get", f"{CONTACT}/consent/", None, Scope.CONTACTS_READ),
    ("post", "/api/v1/contacts/", {"phone": "+14155552672"}, Scope.CONTACTS_WRITE),
    ("patch", f"{CONTACT}/", {"attributes": {"plan": "silver"}}, Scope.CONTACTS_WRITE),
    ("post", "/api/v1/contacts/import/", {}, Scope.CONTACTS_WRITE),
    (
        "post",
        f"{CONTACT}/consent/",
        {"topic": "marketing", "action": "opt_out"},
        Scope.CONTACTS_WRITE,
    ),
    ("get", "/api/v1/campaigns/", None, Scope.CAMPAIGNS_READ),
    ("get", "/api/v1/campaigns/{campaign}/", None, Scope.CAMPAIGNS_READ),
    ("get", "/api/v1/campaigns/{campaign}/preview/", None, Scope.CAMPAIGNS_READ),
    ("get", "/api/v1/campaigns/{campaign}/stats/", None, Scope.CAMPAIGNS_READ),
    ("post", "/api/v1/campaigns/", {"name": "New", "config": "CONFIG"}, Scope.CAMPAIGNS_WRITE),
    ("patch", "/api/v1/campaigns/{campaign}/", {"name": "Renamed"}, Scope.CAMPAIGNS_WRITE),
    ("post", "/api/v1/campaigns/{campaign}/launch/", None, Scope.CAMPAIGNS_LAUNCH),
    ("post", "/api/v1/campaigns/{campaign}/pause/", None, Scope.CAMPAIGNS_LAUNCH),
    ("post", "/api/v1/campaigns/{campaign}/resume/", None, Scope.CAMPAIGNS_LAUNCH),
    ("post", "/api/v1/campaigns/{campaign}/cancel/", None, Scope.CAMPAIGNS_LAUNCH),
    ("get", "/api/v1/messages/", None, Scope.MESSAGES_READ),
    ("get", "/api/v1/messages/{message}/", None, Scope.MESSAGES_READ),
]


def _call(client, method, url, body):
    contact_factory(phone=PHONE)
    campaign = campaign_factory()
    message = Message.objects.create(
        contact=Contact.objects.get(phone=PHONE),
        topic="marketing",
        body="Hi",
        send_after="2026-01-01T00:00:00Z",
    )
    url = url.format(campaign=campaign.pk, message=message.pk)
    if body is not None and body.get("config") == "CONFIG":
        body = {**body, "config": campaign_config()}
    return getattr(client, method)(url, body, format="json")


@pytest.mark.parametrize(("method", "url", "body", "scope"), ENDPOINTS)
def test_a_key_without_the_scope_is_refused_and_nothing_is_written(
    key_client, method, url, body, scope
):
    client = key_client(*sorted(ALL_SCOPES - {scope}))
    audit_before = AuditEntry.objects.count()
    response = _call(client, method, url, body)
    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
    assert scope in response.json()["detail"]
    # The set-up wrote its own entries (contact, campaign); the refused call wrote none.
    assert AuditEntry.objects.count() == audit_before + 2


@pytest.mark.parametrize(("method", "url", "body", "scope"), ENDPOINTS)
def test_a_key_with_only_the_scope_gets_through(key_client, method, url, body, scope):
    response = _call(key_client(scope), method, url, body)
    assert response.status_code not in (401, 403), response.content


def test_it_refuses_an_anonymous_caller_with_401(client):
    assert client.get("/api/v1/contacts/").status_code == 401
    assert client.post(f"{CONTACT}/erase/", {"reason": "x"}).status_code == 401


# --- consent: a STOP is reversed only by the contact or by compliance with a reason ----------


@pytest.mark.parametrize("topic", ["*", "marketing"])
def test_a_contacts_write_key_cannot_reverse_a_stop(key_client, topic):
    contact = contact_stopped_factory(phone=PHONE)
    client = key_client(*ALL_SCOPES)
    ledger, trail = ConsentEvent.objects.count(), AuditEntry.objects.count()
    response = client.post(
        f"{CONTACT}/consent/",
        {"topic": topic, "action": "opt_in", "reason": "the customer asked us by phone"},
        format="json",
    )
    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "consent_override_required"
    contact.refresh_from_db()
    assert contact.opted_out
    assert (ConsentEvent.objects.count(), AuditEntry.objects.count()) == (ledger, trail)


def test_a_campaign_manager_cannot_reverse_a_stop_either(role_client):
    contact = contact_stopped_factory(phone=PHONE)
    ledger = ConsentEvent.objects.count()
    response = role_client("campaign manager").post(
        f"{CONTACT}/consent/",
        {"topic": "*", "action": "opt_in", "reason": "asked"},
        content_type="application/json",
    )
    assert response.status_code == 403
    contact.refresh_from_db()
    assert contact.opted_out
    assert ConsentEvent.objects.count() == ledger


def test_compliance_reverses_a_stop_only_with_a_recorded_reason(role_client):
    contact = contact_stopped_factory(phone=PHONE)
    client = role_client("compliance")
    ledger = ConsentEvent.objects.count()
    url, json = f"{CONTACT}/consent/", "application/json"
    missing = client.post(url, {"topic": "*", "action": "opt_in"}, content_type=json)
    assert missing.status_code == 400
    assert list(missing.json()["errors"]) == ["reason"]
    assert ConsentEvent.objects.count() == ledger
    reason = "Signed consent received by post (DPO-1182)."
    done = client.post(url, {"topic": "*", "action": "opt_in", "reason": reason}, content_type=json)
    assert done.status_code == 200
    assert done.json()["opted_out"] is False
    contact.refresh_from_db()
    assert not contact.opted_out
    event = ConsentEvent.objects.filter(contact=contact).first()
    assert (event.action, event.source) == ("opt_in", "api")
    assert event.evidence == {"override": True, "reason": reason, "by": "compliance"}
    entry = AuditEntry.objects.filter(action="consent.opt_in").get()
    assert (entry.actor_label, entry.after["reason"]) == ("compliance", reason)


def test_an_import_cannot_opt_a_stopped_contact_back_in(key_client):
    contact = contact_stopped_factory(phone=PHONE)
    ledger = ConsentEvent.objects.count()
    upload = SimpleUploadedFile(
        "contacts.csv",
        b"phone,plan,consent_marketing\n+14155552671,silver,yes\n+14155552672,gold,yes\n",
        content_type="text/csv",
    )
    client = key_client(Scope.CONTACTS_WRITE)
    response = client.post("/api/v1/contacts/import/", {"file": upload}, format="multipart")
    assert response.status_code == 202  # a background job; the worker's run is played here
    assert services.campaign_job_run(job_id=response.json()["id"]) == "succeeded"
    body = CampaignJob.objects.get(pk=response.json()["id"]).result
    assert (body["created"], body["updated"]) == (1, 0)
    assert [row["line"] for row in body["rejected"]] == [2]
    contact.refresh_from_db()
    assert contact.opted_out
    assert contact.attributes["plan"] == "gold"
    assert ConsentEvent.objects.filter(contact=contact).count() == 2
    assert ConsentEvent.objects.count() == ledger + 1  # the new contact's opt-in


def test_a_write_key_still_records_opt_ins_and_opt_outs_of_a_contact_who_did_not_stop(key_client):
    contact = contact_factory(phone=PHONE, consent={})
    client = key_client(Scope.CONTACTS_WRITE)
    for action in ("opt_in", "opt_out", "opt_in"):
        response = client.post(
            f"{CONTACT}/consent/", {"topic": "marketing", "action": action}, format="json"
        )
        assert response.status_code == 200
    assert contact.subscriptions.get().status == "opted_in"


# --- masking -----------------------------------------------------------------------------------


def _sent_message() -> Message:
    contact_factory(phone=PHONE)
    campaign = campaign_factory()
    services.campaign_launch(campaign=campaign)
    message = Message.objects.get()
    Message.objects.filter(pk=message.pk).update(
        error_message="The 'To' number +14155552671 is not reachable."
    )
    return message


def test_a_campaign_manager_sees_masked_numbers_and_bodies_and_no_read_is_audited(role_client):
    message = _sent_message()
    client = role_client("campaign manager")
    contacts = client.get("/api/v1/contacts/").json()["results"]
    assert [row["phone"] for row in contacts] == [MASKED]
    assert client.get(f"{CONTACT}/").json()["phone"] == MASKED
    assert client.get(f"{CONTACT}/consent/").json()["phone"] == MASKED
    listed = client.get("/api/v1/messages/").json()["results"][0]
    assert (listed["phone"], listed["body"]) == (MASKED, f"[{len(message.body)} characters hidden]")
    detail = client.get(f"/api/v1/messages/{message.pk}/").json()
    assert detail["error_message"] == f"The 'To' number {MASKED} is not reachable."
    assert not AuditEntry.objects.filter(action="pii.read").exists()


def test_compliance_sees_numbers_unmasked_and_each_read_is_audited_naming_the_rows(role_client):
    message = _sent_message()
    contact = message.contact
    client = role_client("compliance")
    assert client.get("/api/v1/contacts/").json()["results"][0]["phone"] == PHONE
    listed = client.get("/api/v1/messages/").json()["results"][0]
    assert (listed["phone"], listed["body"]) == (PHONE, message.body)
    assert client.get(f"/api/v1/messages/{message.pk}/").json()["phone"] == PHONE
    reads = list(
        AuditEntry.objects.filter(action="pii.read")
        .order_by("id")
        .values_list("actor_label", "target_type", "after")
    )
    assert reads == [
        ("compliance", "contact", {"ids": [str(contact.pk)]}),
        ("compliance", "message", {"ids": [str(message.pk)]}),
        ("compliance", "message", {"ids": [str(message.pk)]}),
    ]


def test_a_key_with_pii_read_sees_the_preview_unmasked_and_the_read_is_audited(key_client):
    contact = contact_factory(phone=PHONE)
    campaign = campaign_factory()
    masked = key_client(Scope.CAMPAIGNS_READ).get(f"/api/v1/campaigns/{campaign.pk}/preview/")
    assert masked.json()["samples"][0]["phone"] == MASKED
    assert masked.json()["samples"][0]["body"].endswith("characters hidden]")
    assert not AuditEntry.objects.filter(action="pii.read").exists()
    client = key_client(Scope.CAMPAIGNS_READ, Scope.PII_READ)
    sample = client.get(f"/api/v1/campaigns/{campaign.pk}/preview/").json()["samples"][0]
    assert (sample["phone"], sample["body"]) == (PHONE, "Hi Ada, your gold offer is waiting.")
    entry = AuditEntry.objects.get(action="pii.read")
    assert entry.after == {"ids": [str(contact.pk)]}


def test_it_lists_contacts_masked_in_a_fixed_number_of_queries(
    key_client, django_assert_num_queries
):
    for _ in range(5):
        contact_factory()
    client = key_client(Scope.CONTACTS_READ)
    with django_assert_num_queries(3):  # key lookup, count, page
        response = client.get("/api/v1/contacts/?opted_out=false")
    assert response.json()["count"] == 5


# --- erasure through the API -----------------------------------------------------------------


def test_only_a_person_with_contacts_erase_may_erase(key_client, role_client):
    contact = contact_factory(phone=PHONE)
    url = f"{CONTACT}/erase/"
    body = {"reason": "Erasure request DPO-1183"}
    assert key_client(*ALL_SCOPES).post(url, body, format="json").status_code == 403
    manager = role_client("campaign manager")
    assert manager.post(url, body, content_type="application/json").status_code == 403
    contact.refresh_from_db()
    assert (contact.phone, contact.erased_at) == (PHONE, None)
    compliance = role_client("compliance")
    no_reason = compliance.post(url, {}, content_type="application/json")
    assert no_reason.status_code == 400
    assert list(no_reason.json()["errors"]) == ["reason"]
    done = compliance.post(url, body, content_type="application/json")
    assert done.status_code == 200
    assert done.json()["contact"] == contact.pk
    contact.refresh_from_db()
    assert contact.phone.startswith("erased:")
    assert contact.opted_out
    assert compliance.get(f"{CONTACT}/").status_code == 404
