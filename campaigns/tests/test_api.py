"""The /api/v1/ contacts, campaigns and messages endpoints, as integrators call them."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from campaigns import services
from campaigns.models import Campaign, ConsentEvent, Contact, Message
from campaigns.tests.factories import campaign_config, contact_factory

pytestmark = pytest.mark.django_db


def test_it_creates_and_reads_a_contact_by_any_form_of_its_number(api_client):
    created = api_client.post(
        "/api/v1/contacts/",
        {"phone": "(415) 555-2671", "attributes": {"plan": "gold"}, "consent": {"marketing": True}},
    )
    assert created.status_code == 201
    assert created.json()["phone"] == "+14155552671"
    for form in ("%2B14155552671", "415-555-2671"):
        response = api_client.get(f"/api/v1/contacts/{form}/")
        assert response.status_code == 200
        assert response.json()["number_time_zones"] == "America/Los_Angeles"


def test_it_names_the_field_of_an_invalid_number(api_client):
    response = api_client.post("/api/v1/contacts/", {"phone": "12345"})
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert list(response.json()["errors"]) == ["phone"]
    assert not Contact.objects.exists()


def test_it_updates_attributes(api_client):
    contact_factory(phone="+14155552671")
    response = api_client.patch(
        "/api/v1/contacts/+14155552671/", {"attributes": {"plan": "silver"}}
    )
    assert response.status_code == 200
    assert response.json()["attributes"] == {"plan": "silver"}


def test_it_imports_a_csv_with_a_line_numbered_report(api_client):
    upload = SimpleUploadedFile(
        "contacts.csv", b"phone,plan\n+14155552671,gold\nbad,gold\n", content_type="text/csv"
    )
    response = api_client.post("/api/v1/contacts/import/", {"file": upload}, format="multipart")
    assert response.status_code == 202  # a background job; the worker's run is played here
    assert services.campaign_job_run(job_id=response.json()["id"]) == "succeeded"
    body = api_client.get(response["Location"]).json()["result"]
    assert (body["created"], [row["line"] for row in body["rejected"]]) == (1, [3])


def test_it_reads_and_changes_consent(api_client):
    contact_factory(phone="+14155552671")
    changed = api_client.post(
        "/api/v1/contacts/+14155552671/consent/",
        {"topic": "marketing", "action": "opt_out", "evidence": {"form": "web"}},
    )
    assert changed.status_code == 200
    assert changed.json()["topics"] == {"marketing": "opted_out"}
    assert [entry["action"] for entry in changed.json()["ledger"]] == ["opt_out", "opt_in"]
    ledger_size = ConsentEvent.objects.count()
    bad = api_client.post(
        "/api/v1/contacts/+14155552671/consent/", {"topic": "marketing", "action": "maybe"}
    )
    assert bad.status_code == 400
    assert "action" in bad.json()["errors"]
    assert ConsentEvent.objects.count() == ledger_size


@pytest.mark.parametrize(
    ("evidence", "reason"),
    [
        ('{"note": "\\ud800"}', "Unpaired surrogate"),
        ('{"note": "a\\u0000b"}', "NUL"),
        ('{"amount": 1e400}', "finite"),
        ('{"\\udfff": true}', "Unpaired surrogate"),
    ],
)
def test_it_refuses_consent_evidence_that_postgres_cannot_store(api_client, evidence, reason):
    contact_factory(phone="+14155552671")
    ledger_size = ConsentEvent.objects.count()

    response = api_client.post(
        "/api/v1/contacts/+14155552671/consent/",
        f'{{"topic": "marketing", "action": "opt_out", "evidence": {evidence}}}',
        content_type="application/json",
    )

    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/problem+json"
    (message,) = response.json()["errors"]["evidence"]
    assert reason in message
    assert ConsentEvent.objects.count() == ledger_size


def test_it_validates_a_campaign_config_by_field(api_client):
    response = api_client.post(
        "/api/v1/campaigns/",
        {"name": "Bad", "config": {"segment": "nope(", "template": "{{ x", "rate_per_second": 0}},
    )
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {
        "config.segment",
        "config.template",
        "config.rate_per_second",
    }
    assert not Campaign.objects.exists()


def test_it_runs_the_campaign_lifecycle(api_client):
    contact_factory(phone="+14155552671")
    created = api_client.post(
        "/api/v1/campaigns/", {"name": "Gold", "config": campaign_config()}, format="json"
    )
    assert created.status_code == 201
    campaign_id = created.json()["id"]
    base = f"/api/v1/campaigns/{campaign_id}"
    assert api_client.patch(f"{base}/", {"name": "Gold v2"}).json()["name"] == "Gold v2"
    preview = api_client.get(f"{base}/preview/").json()
    assert (preview["matched"], preview["eligible"]) == (1, 1)
    launched = api_client.post(f"{base}/launch/")
    assert (launched.status_code, launched.json()["kind"]) == (202, "launch")
    services.campaign_job_run(job_id=launched.json()["id"])  # what the heavy worker does
    assert api_client.get(f"{base}/").json()["status"] == "running"
    assert api_client.patch(f"{base}/", {"name": "Late"}).status_code == 409
    assert Campaign.objects.get(pk=campaign_id).name == "Gold v2"
    assert api_client.post(f"{base}/pause/").json()["status"] == "paused"
    assert api_client.post(f"{base}/pause/").status_code == 409
    assert api_client.post(f"{base}/resume/").json()["status"] == "running"
    stats = api_client.get(f"{base}/stats/").json()
    assert (stats["total"], stats["counts"]["pending"], stats["in_flight"]) == (1, 1, 1)
    assert api_client.post(f"{base}/cancel/").json()["status"] == "canceled"
    stats = api_client.get(f"{base}/stats/").json()
    assert stats["canceled_by_reason"] == {"campaign_canceled": 1}
    assert api_client.get("/api/v1/campaigns/999999/").status_code == 404


def test_it_lists_and_filters_messages_in_a_fixed_number_of_queries(
    api_client, key_client, django_assert_num_queries
):
    for _ in range(4):
        contact_factory()
    campaign = services.campaign_create(name="Gold", config=campaign_config())
    services.campaign_launch(campaign=campaign)
    masked = key_client("messages:read")
    with django_assert_num_queries(3):  # key, count, page (the campaign id filters directly)
        response = masked.get(f"/api/v1/messages/?campaign={campaign.pk}&status=pending")
    assert response.json()["count"] == 4
    message = Message.objects.filter(campaign=campaign).first()
    services.messages_dispatch()
    detail = api_client.get(f"/api/v1/messages/{message.pk}/").json()
    assert [t["to_status"] for t in detail["transitions"]] == ["queued"]
    assert api_client.get("/api/v1/messages/", {"phone": detail["phone"]}).json()["count"] == 1


def test_it_replays_a_launch_with_the_same_idempotency_key(staff_client):
    contact_factory()
    campaign = services.campaign_create(name="Gold", config=campaign_config())
    url = f"/api/v1/campaigns/{campaign.pk}/launch/"
    json = "application/json"
    first = staff_client.post(url, "{}", content_type=json, HTTP_IDEMPOTENCY_KEY="launch-1")
    replay = staff_client.post(url, "{}", content_type=json, HTTP_IDEMPOTENCY_KEY="launch-1")
    assert (first.status_code, replay.status_code) == (202, 202)
    assert replay["Idempotent-Replayed"] == "true"
    assert replay.json()["id"] == first.json()["id"]  # one job, not two
    assert replay["Location"] == first["Location"]
    services.campaign_job_run(job_id=first.json()["id"])
    assert Message.objects.filter(campaign=campaign).count() == 1


def test_it_requires_authentication(client):
    assert client.get("/api/v1/campaigns/").status_code == 401
    assert client.get("/api/v1/messages/").status_code == 401
