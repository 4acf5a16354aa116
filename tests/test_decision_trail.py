"""One trail across the apps: event -> risk score -> rule -> SMS -> delivery receipt."""

import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
import requests

from campaigns import services as campaign_services
from campaigns.models import Contact, Message
from campaigns.tests.factories import approved_template
from core.models import IdempotencyRecord
from decisions.models import Decision, Event
from decisions.tests.factories import rule_with_version
from records.models import PredictionRecord
from risk.tests.factories import applicant

# One number per region; a test picks one whose local time is inside the default send window.
DAYTIME_CANDIDATES = {
    "+4915112345678": "Europe/Berlin",
    "+12125550123": "America/New_York",
    "+81312345678": "Asia/Tokyo",
    "+61212345678": "Australia/Sydney",
    "+919812345678": "Asia/Kolkata",
}


def number_in_daytime() -> str:
    for phone, zone in DAYTIME_CANDIDATES.items():
        if 9 <= datetime.now(UTC).astimezone(ZoneInfo(zone)).hour < 20:
            return phone
    raise AssertionError("no candidate zone is in daytime")  # impossible: they span the globe


def post_event(client, body, key="event-1"):
    return client.post("/api/v1/events/", body, format="json", HTTP_IDEMPOTENCY_KEY=key)


@pytest.mark.django_db
def test_it_scores_the_event_and_lets_rules_read_the_score(api_client, credit_model):
    rule_with_version(key="scored", condition="risk.score >= 0.0", outcome="review")
    features = applicant(3)

    response = post_event(
        api_client,
        {
            "type": "loan_application",
            "payload": {"amount": 10},
            "risk": {"model_id": "credit-default", "features": features},
        },
    )

    assert response.status_code == 201, response.content
    decision = Decision.objects.get()
    record = PredictionRecord.objects.get()
    assert decision.outcome == "review"
    assert decision.risk_record_id == record.pk
    assert decision.risk_score == pytest.approx(record.risk_score)
    assert decision.risk_label == record.risk_label
    assert record.source == "decision"
    assert record.event_id == decision.event_id
    assert record.features == features


@pytest.mark.django_db
def test_it_rejects_unscorable_features_naming_the_field_and_stores_nothing(
    api_client, credit_model
):
    features = applicant(0, duration_months=-5)

    response = post_event(
        api_client,
        {
            "type": "loan_application",
            "payload": {"amount": 10},
            "risk": {"model_id": "credit-default", "features": features},
        },
    )

    assert response.status_code == 400
    assert "risk.features.duration_months" in response.json()["errors"]
    assert not Event.objects.exists()
    assert not Decision.objects.exists()
    assert not PredictionRecord.objects.exists()
    assert not IdempotencyRecord.objects.exists()


@pytest.mark.django_db
def test_it_rejects_an_unknown_model(api_client):
    response = post_event(
        api_client,
        {"type": "loan_application", "payload": {}, "risk": {"model_id": "nope", "features": {}}},
    )

    assert response.status_code == 404  # the model it names does not exist (documented)
    assert "risk.model_id" in response.json()["errors"]
    assert not Event.objects.exists()


SMS_ACTION = {"type": "sms", "to": "event.phone", "template": "application-status"}
# The candidates' regions, all allowed to receive SMS here (in the worker too).
ALLOWED_COUNTRIES = ["DE", "US", "JP", "AU", "IN"]


@pytest.fixture
def sms_template(settings):
    """Rule actions send only approved templates; the candidates' countries are allowed."""
    settings.SMS_ALLOWED_COUNTRIES = ALLOWED_COUNTRIES
    return approved_template(
        key="application-status", body="Your application for {{ event.amount }} is {{ outcome }}."
    )


@pytest.mark.django_db
def test_it_records_a_canceled_message_for_a_recipient_who_opted_out(api_client, sms_template):
    phone = "+4915112345678"
    contact = Contact.objects.create(phone=phone, time_zone="Europe/Berlin")
    campaign_services.consent_change(contact=contact, topic="*", action="opt_out", source="admin")
    rule_with_version(key="notify", condition="true", outcome="review", actions=[SMS_ACTION])

    response = post_event(
        api_client, {"type": "loan_application", "payload": {"amount": 5, "phone": phone}}
    )

    assert response.status_code == 201
    action = Decision.objects.get().actions[0]
    message = Message.objects.get()
    assert (action["status"], action["reason"], action["message_id"]) == (
        "canceled",
        "opted_out",
        message.pk,
    )
    assert message.status == "canceled"


@pytest.mark.django_db
def test_it_records_a_failed_action_without_failing_the_decision(api_client, sms_template):
    rule_with_version(key="notify", condition="true", outcome="review", actions=[SMS_ACTION])

    response = post_event(
        api_client, {"type": "loan_application", "payload": {"amount": 5, "phone": "12"}}
    )

    assert response.status_code == 201
    action = Decision.objects.get().actions[0]
    assert action["status"] == "failed"
    assert "phone" in action["error"].lower() or "number" in action["error"].lower()
    assert not Message.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_it_shows_the_whole_trail_up_to_the_delivery_receipt(
    celery_worker, live_server, settings, api_key, credit_model, staff_client, sms_template
):
    """A real worker sends through the simulator, whose signed receipt reaches our webhook."""
    settings.SMS_PROVIDER = "simulator"
    settings.SIMULATOR_FAILURE_RATE = 0.0
    settings.PUBLIC_BASE_URL = live_server.url
    celery_worker.start(
        env={
            "SMS_PROVIDER": "simulator",
            "SIMULATOR_FAILURE_RATE": "0",
            "CAMPAIGNS_SIMULATOR_CALLBACK_DELAY_SECONDS": "0.1",
            "PUBLIC_BASE_URL": live_server.url,
            "SMS_ALLOWED_COUNTRIES": ",".join(ALLOWED_COUNTRIES),
        }
    )
    rule_with_version(
        key="notify", condition="risk.score >= 0.0", outcome="review", actions=[SMS_ACTION]
    )
    phone = number_in_daytime()

    response = requests.post(
        f"{live_server.url}/api/v1/events/",
        json={
            "type": "loan_application",
            "payload": {"amount": 900, "phone": phone},
            "risk": {"model_id": "credit-default", "features": applicant(1)},
        },
        headers={"Authorization": f"Api-Key {api_key[1]}", "Idempotency-Key": "trail-1"},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    decision = Decision.objects.get()

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and Message.objects.get().status != "delivered":
        time.sleep(0.2)
    message = Message.objects.get()
    assert message.status == "delivered", celery_worker.log()[-2000:]
    assert message.body == "Your application for 900 is review."

    page = staff_client.get(f"/decisions/{decision.pk}/").content.decode()
    assert f"/records/{decision.risk_record_id}/" in page
    assert 'data-testid="message-status">delivered<' in page
    assert message.provider_sid in page
    for status in ("queued", "sending", "sent", "delivered"):
        assert f"<td>{status}</td>" in page
