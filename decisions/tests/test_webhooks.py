"""Outbound webhook actions: endpoints registered by staff, bodies signed, sent after commit by
the Celery task against a real local HTTP server, retried, recorded, and never sent twice."""

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from celery import current_app

from core.errors import InvalidInput
from core.models import AuditEntry
from core.tests.identities import person, session_client
from decisions import replay_selectors, services, signing
from decisions.exceptions import InvalidActions
from decisions.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from decisions.services.webhooks import webhook_retry_delay
from decisions.tests.factories import register_event, rule_with_version

pytestmark = pytest.mark.django_db


class Receiver:
    """A local HTTP server that answers `failing_status` (500) to its first `failures` requests,
    then 204."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.failing_status = 500
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), body))
                failing = len(receiver.received) <= receiver.failures
                self.send_response(receiver.failing_status if failing else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/decisions"


@pytest.fixture
def receiver(settings) -> Iterator[Receiver]:
    settings.DECISIONS_WEBHOOK_ALLOW_LOOPBACK_HTTP = True
    receiver = Receiver(failures=1)
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


@pytest.fixture
def eager_tasks() -> Iterator[None]:
    """Tasks run in this process when the transaction commits (the retry too, at once)."""
    before = current_app.conf.task_always_eager
    current_app.conf.task_always_eager = True
    yield
    current_app.conf.task_always_eager = before


def test_a_webhook_action_is_delivered_once_despite_a_failing_first_attempt(
    receiver, eager_tasks, django_capture_on_commit_callbacks
):
    endpoint, secret = services.webhook_endpoint_create(name="case_system", url=receiver.url)
    rule_with_version(outcome="review", actions=[{"type": "webhook", "endpoint": "case_system"}])

    with django_capture_on_commit_callbacks(execute=True):
        decision = register_event({"amount": 5000})
    # Another copy of the task (a redelivered message) finds nothing left to send.
    delivery = WebhookDelivery.objects.get()
    assert services.webhook_delivery_attempt(delivery_id=delivery.pk) is None

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.decision_id) == (
        "delivered",
        2,
        decision.pk,
    )
    assert list(
        WebhookAttempt.objects.filter(delivery=delivery).values_list("number", "status_code")
    ) == [(1, 500), (2, 204)]
    assert len(receiver.received) == 2
    headers, body = receiver.received[-1]
    assert signing.signature_verify(
        secret=secret, body=body, header=headers["Webhook-Signature"], now=int(time.time())
    )
    assert json.loads(body)["decision"] == {
        "id": decision.pk,
        "event_id": decision.event_id,
        "event_type": "loan_application",
        "outcome": "review",
        "rule": {"key": "high-amount", "version": 1},
        "risk": None,
        "decided_at": decision.decided_at.isoformat(),
    }
    assert decision.actions[0]["status"] == "queued"
    assert decision.actions[0]["delivery_id"] == delivery.pk
    assert endpoint.secret_encrypted != secret
    assert replay_selectors.decision_replay(decision=decision)["matches"] is True


def test_a_refusal_fails_at_once_and_busy_answers_stop_after_the_last_attempt(
    receiver, settings, django_capture_on_commit_callbacks
):
    settings.DECISIONS_WEBHOOK_MAX_ATTEMPTS = 2
    receiver.failures, receiver.failing_status = 10, 400
    services.webhook_endpoint_create(name="case_system", url=receiver.url)
    rule_with_version(outcome="review", actions=[{"type": "webhook", "endpoint": "case_system"}])
    with django_capture_on_commit_callbacks(execute=False):
        refused, busy = register_event({"amount": 5000}), register_event({"amount": 6000})
    first, second = (WebhookDelivery.objects.get(decision=d) for d in (refused, busy))

    assert services.webhook_delivery_attempt(delivery_id=first.pk) is None
    receiver.failing_status = 503
    assert services.webhook_delivery_attempt(delivery_id=second.pk) is not None
    assert services.webhook_delivery_attempt(delivery_id=second.pk) is None

    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.attempts) == ("failed", 1)
    assert (second.status, second.attempts) == ("failed", 2)
    assert len(receiver.received) == 3
    page = session_client(person("analyst")).get(f"/decisions/{busy.pk}/")
    assert page.content.decode().count("HTTP 503") == 2


def test_nothing_is_sent_when_the_decision_rolls_back(receiver, django_capture_on_commit_callbacks):
    services.webhook_endpoint_create(name="case_system", url=receiver.url)
    rule_with_version(outcome="review", actions=[{"type": "webhook", "endpoint": "case_system"}])

    with pytest.raises(InvalidInput), django_capture_on_commit_callbacks(execute=True) as sent:
        register_event({"amount": 5000, "too_many": list(range(300))})

    assert sent == []
    assert not WebhookDelivery.objects.exists()
    assert receiver.received == []


def test_a_rule_cannot_call_an_endpoint_that_was_switched_off(receiver):
    services.webhook_endpoint_create(name="gone", url=receiver.url)
    WebhookEndpoint.objects.filter(name="gone").update(is_active=False)

    with pytest.raises(InvalidActions) as refused:
        rule_with_version(outcome="review", actions=[{"type": "webhook", "endpoint": "gone"}])
    assert list(refused.value.errors) == ["actions[0].endpoint"]


def test_the_backoff_doubles_with_each_attempt(settings):
    settings.DECISIONS_WEBHOOK_BACKOFF_SECONDS = 10

    delays = [webhook_retry_delay(attempt) for attempt in (1, 2, 3)]

    assert 8 <= delays[0] <= 12
    assert 16 <= delays[1] <= 24
    assert 32 <= delays[2] <= 48


def test_an_endpoint_must_be_https_and_its_secret_is_never_shown_again(settings):
    settings.DECISIONS_WEBHOOK_ALLOW_LOOPBACK_HTTP = False
    for url in ("http://127.0.0.1:9/x", "ftp://example.com/x", "https://user:pw@example.com/x"):
        with pytest.raises(InvalidInput) as refused:
            services.webhook_endpoint_create(name="bad", url=url)
        assert list(refused.value.errors) == ["url"]

    endpoint, secret = services.webhook_endpoint_create(name="ok", url="https://hooks.example/x")
    admin_page = session_client(person("admin")).get(
        f"/admin/decisions/webhookendpoint/{endpoint.pk}/change/"
    )

    assert admin_page.status_code == 200
    assert secret not in admin_page.content.decode()
    assert endpoint.secret_encrypted not in admin_page.content.decode()
    assert signing.secret_decrypt(endpoint.secret_encrypted) == secret
    assert secret not in json.dumps(list(AuditEntry.objects.values("before", "after")))


def test_only_a_webhook_manager_registers_endpoints_in_the_admin(client):
    editor = session_client(person("rule editor"))
    client.force_login(person("admin"))
    form = {"name": "crm", "url": "https://crm.example/hook", "description": "", "is_active": "on"}

    refused = editor.post("/admin/decisions/webhookendpoint/add/", form)
    created = client.post("/admin/decisions/webhookendpoint/add/", form, follow=True)

    assert refused.status_code == 403
    assert created.status_code == 200
    assert "Signing secret of crm: whsec_" in created.content.decode()
    assert WebhookEndpoint.objects.get().name == "crm"
