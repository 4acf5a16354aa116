"""Twilio webhooks over HTTP: signatures, raw storage, dedup, STOP / START / HELP."""

from urllib.parse import urlencode

import pytest
from django.core.cache import cache
from twilio.request_validator import RequestValidator

from campaigns import services
from campaigns.models import ConsentEvent, Contact, Message, MessageTransition, WebhookRequest
from campaigns.tests.factories import contact_factory

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


@pytest.fixture(autouse=True)
def fresh_rejection_counts():
    """Rejections are counted per address in the cache: each test starts from none."""
    cache.clear()
    yield
    cache.clear()


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


def test_it_refuses_a_body_over_64_kib_before_reading_or_storing_it(client):
    params = {"From": "+14155552671", "Body": "x" * (64 * 1024), "MessageSid": "SM1"}
    response = post(client, INBOUND, params)
    assert response.status_code == 413
    assert response["Content-Type"] == "application/problem+json"
    assert not WebhookRequest.objects.exists()
    assert not Contact.objects.exists()


def test_it_keeps_a_rejected_request_bounded_and_never_its_signature(client, settings):
    settings.WEBHOOK_REJECTED_BODY_KEEP_BYTES = 100
    params = {"From": "+14155552671", "Body": "STOP " + "y" * 5000, "MessageSid": "SM1"}
    assert post(client, INBOUND, params, token="wrong").status_code == 403
    stored = WebhookRequest.objects.get()
    assert (stored.outcome, len(stored.body)) == ("rejected", 100)
    assert not {name.lower() for name in stored.headers} & {"x-twilio-signature"}


def test_it_never_stores_the_signature_of_an_accepted_request(client):
    assert inbound(client, "hello", "SM1").status_code == 200
    stored = WebhookRequest.objects.get()
    assert stored.outcome == "processed"
    assert "X-Twilio-Signature" not in stored.headers
    assert "x-twilio-signature" not in {name.lower() for name in stored.headers}


def test_it_throttles_an_address_after_too_many_rejections(client, settings):
    settings.WEBHOOK_REJECTIONS_PER_ADDRESS = 5
    for _ in range(5):
        assert post(client, STATUS, {"MessageSid": "SM1"}, token="wrong").status_code == 403
    stored = WebhookRequest.objects.count()

    throttled = inbound(client, "STOP", "SM9")  # even a well-signed one, from this address
    assert throttled.status_code == 429
    assert int(throttled["Retry-After"]) == settings.WEBHOOK_REJECTION_WINDOW_SECONDS
    assert WebhookRequest.objects.count() == stored  # nothing more stored
    assert not Contact.objects.exists()
    params = {"From": "+14155552671", "Body": "STOP", "MessageSid": "SM9"}
    other = post(client, INBOUND, params, REMOTE_ADDR="203.0.113.9")  # others are unaffected
    assert other.status_code == 200


def test_a_replayed_signed_callback_with_a_fresh_idempotency_header_changes_nothing(client):
    contact = contact_factory(phone="+14155552671")
    message = services.transactional_message_send(
        phone=contact.phone, template="Hi", context={}, reference="replay:1"
    )
    Message.objects.filter(pk=message.pk).update(provider_sid="SM123", status="sent")
    delivered = {"MessageSid": "SM123", "MessageStatus": "delivered"}
    first = post(client, STATUS, delivered, HTTP_I_TWILIO_IDEMPOTENCY_TOKEN="token-1")
    assert first["X-Webhook-Outcome"] == "processed"
    transitions = MessageTransition.objects.filter(message=message).count()
    # Someone replays the same signed request, changing only the header Twilio does not sign.
    Message.objects.filter(pk=message.pk).update(status="sent")  # even if it could move it
    replay = post(client, STATUS, delivered, HTTP_I_TWILIO_IDEMPOTENCY_TOKEN="token-2")

    assert replay["X-Webhook-Outcome"] == "duplicate"
    assert MessageTransition.objects.filter(message=message).count() == transitions
    assert Message.objects.get(pk=message.pk).status == "sent"


def test_a_failure_while_processing_keeps_the_raw_request_and_undoes_the_rest(client, monkeypatch):
    # Given a status callback whose processing breaks half-way, after moving the message
    message = Message.objects.create(
        contact=contact_factory(),
        topic="marketing",
        body="Hi",
        status="sent",
        provider_sid="SM9",
        send_after="2026-01-01T00:00:00Z",
    )
    apply = services.receipts._status_webhook

    def apply_then_break(**kwargs):
        apply(**kwargs)
        raise RuntimeError("a bug after the move")

    monkeypatch.setattr(services.receipts, "_status_webhook", apply_then_break)
    client.raise_request_exception = False

    # When it arrives
    response = post(client, STATUS, {"MessageSid": "SM9", "MessageStatus": "delivered"})

    # Then the provider is told to deliver it again, the raw request is kept as received, and
    # nothing of the half-done processing remains
    assert response.status_code == 500
    stored = WebhookRequest.objects.get()
    assert (stored.outcome, stored.dedup_key) == ("received", "")
    assert "MessageStatus=delivered" in stored.body
    assert Message.objects.get(pk=message.pk).status == "sent"
    assert not MessageTransition.objects.filter(message=message).exists()


def test_a_receipt_commits_without_waiting_for_the_disk_and_an_inbound_stop_waits(client):
    from django.db import connection

    message = Message.objects.create(
        contact=contact_factory(phone="+14155552671"),
        topic="marketing",
        body="Hi",
        status="sent",
        provider_sid="SM42",
        send_after="2026-01-01T00:00:00Z",
    )
    statements: list[str] = []

    def record(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        post(client, STATUS, {"MessageSid": "SM42", "MessageStatus": "delivered"})
    receipt_statements, statements[:] = list(statements), []
    with connection.execute_wrapper(record):
        inbound(client, "STOP", "SM43")

    # The receipt is recoverable by reconciliation, so its commit does not wait for the WAL
    # flush; a STOP has no second source, so its commit does.
    assert "SET LOCAL synchronous_commit = off" in receipt_statements
    assert "SET LOCAL synchronous_commit = off" not in statements
    assert Message.objects.get(pk=message.pk).status == "delivered"
    assert Contact.objects.get(phone="+14155552671").opted_out
