"""Twilio webhooks over HTTP: signatures, raw storage, dedup, STOP / START / HELP."""

from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator

from campaigns.models import ConsentEvent, Contact, WebhookRequest

pytestmark = pytest.mark.django_db
PUBLIC = "https://hooks.example.com"
INBOUND = "/webhooks/twilio/inbound/"
STATUS = "/webhooks/twilio/status/"
FORM = "application/x-www-form-urlencoded"


@pytest.fixture(autouse=True)
def tokens(settings):
    settings.SMS_PROVIDER = "twilio"
    settings.PUBLIC_BASE_URL = PUBLIC
    settings.TWILIO_AUTH_TOKEN = "primary-token"
    settings.TWILIO_SECONDARY_AUTH_TOKEN = "secondary-token"


def post(client, path, params, *, token="primary-token", url=None, **headers):
    signature = RequestValidator(token).compute_signature(url or PUBLIC + path, params)
    return client.post(
        path, urlencode(params), content_type=FORM, HTTP_X_TWILIO_SIGNATURE=signature, **headers
    )


def inbound(client, body, sid, **extra):
    params = {"From": "+14155552671", "To": "+15005550006", "Body": body, "MessageSid": sid}
    return post(client, INBOUND, {**params, **extra})


def test_it_rejects_a_bad_signature_with_403_and_keeps_the_request(client):
    response = post(client, INBOUND, {"From": "+14155552671", "Body": "STOP"}, token="wrong")
    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
    stored = WebhookRequest.objects.get()
    assert (stored.outcome, stored.kind) == ("rejected", "inbound")
    assert "Body=STOP" in stored.body
    assert not Contact.objects.exists()


def test_it_rejects_a_request_without_a_signature(client):
    response = client.post(STATUS, "MessageSid=SM1&MessageStatus=sent", content_type=FORM)
    assert response.status_code == 403
    assert WebhookRequest.objects.get().outcome == "rejected"


def test_it_accepts_the_secondary_token_and_the_url_with_its_default_port(client):
    response = post(
        client,
        INBOUND,
        {"From": "+14155552671", "Body": "hello", "MessageSid": "SM1"},
        token="secondary-token",
        url="https://hooks.example.com:443" + INBOUND,
    )
    assert response.status_code == 200
    assert WebhookRequest.objects.get().outcome == "processed"


def test_it_handles_stop_then_start_with_one_confirmation_per_change(client):
    first = inbound(client, "Stop", "SM1")
    assert b"You are unsubscribed" in first.content
    assert Contact.objects.get().opted_out is True

    repeated = inbound(client, "STOP", "SM1")  # Twilio retried the same message
    assert repeated["X-Webhook-Outcome"] == "duplicate"
    assert b"<Message>" not in repeated.content

    again = inbound(client, "unsubscribe", "SM2")  # a new STOP: no change, no confirmation
    assert b"<Message>" not in again.content

    restart = inbound(client, " start ", "SM3")
    assert b"You are subscribed again" in restart.content
    assert Contact.objects.get().opted_out is False
    ledger = list(
        ConsentEvent.objects.order_by("occurred_at", "id").values_list("action", "source")
    )
    assert ledger == [
        ("opt_out", "sms_keyword"),
        ("opt_out", "sms_keyword"),
        ("opt_in", "sms_keyword"),
    ]


@pytest.mark.parametrize(
    "keyword", ["STOP", "stopall", "UNSUBSCRIBE", "cancel", "END", "quit", "REVOKE", "optout"]
)
def test_it_opts_out_on_every_stop_keyword(client, keyword):
    inbound(client, keyword, "SM-" + keyword)
    assert Contact.objects.get().opted_out is True


def test_it_ignores_a_keyword_inside_a_sentence(client):
    response = inbound(client, "please stop by tomorrow", "SM1")
    assert response.status_code == 200
    assert not Contact.objects.exists()


def test_it_answers_help_with_the_configured_text(client, settings):
    settings.SMS_HELP_TEXT = "Acme: reply STOP to opt out."
    response = inbound(client, "info", "SM1")
    assert b"Acme: reply STOP to opt out." in response.content


def test_it_honours_twilio_opt_out_type_without_answering_twice(client):
    response = inbound(client, "arrêt", "SM1", OptOutType="STOP")
    assert Contact.objects.get().opted_out is True
    assert b"<Message>" not in response.content  # Twilio's Advanced Opt-Out already replied


def test_it_ignores_a_status_callback_for_an_unknown_message(client):
    response = post(client, STATUS, {"MessageSid": "SM404", "MessageStatus": "delivered"})
    assert response.status_code == 200
    assert WebhookRequest.objects.get().outcome == "ignored"
