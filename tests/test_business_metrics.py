"""Business metrics on /metrics move when the product works: decisions, scoring, messages,
provider errors, webhook rejections, Celery queues (filesystem and Redis), review and drift."""

import time
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families
from twilio.request_validator import RequestValidator

from campaigns import services as campaigns_services
from campaigns.tests.factories import contact_factory
from core import telemetry
from decisions import services as decisions_services
from decisions.tests.factories import register_event, rule_with_version
from records.models import DriftMeasurement
from risk.tests.factories import applicant
from tests.support.private_broker import private_broker
from tests.support.redis_server import RedisServer

STATUS_WEBHOOK = "/webhooks/twilio/status/"
__all__ = ["private_broker"]  # the fixture


def scrape(client) -> dict[tuple[str, frozenset], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.mark.django_db
def test_it_counts_decisions_by_outcome_and_rule_with_engine_and_scoring_latency(
    client, credit_model
):
    rule_with_version(key="large", condition="event.amount > 1000", outcome="review")
    before = scrape(client)

    register_event({"amount": 5})  # no rule matches: the policy's default
    decisions_services.event_register(
        event_type="loan_application",
        payload={"amount": 5000},
        idempotency_key="metrics-1",
        client_scope="test",
        fingerprint="0" * 64,
        risk_request={"model_id": "credit-default", "features": applicant(0)},
    )
    after = scrape(client)

    decided = "decisioning_decisions_total"
    assert (
        value(after, decided, outcome="review", rule="large")
        - value(before, decided, outcome="review", rule="large")
        == 1
    )
    assert (
        value(after, decided, outcome="approve", rule="(none)")
        - value(before, decided, outcome="approve", rule="(none)")
        == 1
    )
    engine = "decisioning_engine_seconds_count"
    assert value(after, engine) - value(before, engine) == 2
    scored = "decisioning_scoring_seconds_count"
    assert (
        value(after, scored, model="credit-default") - value(before, scored, model="credit-default")
        == 1
    )


@pytest.mark.django_db
def test_it_counts_message_statuses_provider_errors_and_webhook_rejections(client, settings):
    settings.SMS_PROVIDER = "twilio"
    settings.PUBLIC_BASE_URL = "https://hooks.example.com"
    settings.TWILIO_AUTH_TOKEN = "primary-token"
    contact = contact_factory(phone="+14155552671")
    message = campaigns_services.transactional_message_send(
        phone=contact.phone, template="Hi", context={}, reference="metrics:1"
    )
    type(message).objects.filter(pk=message.pk).update(provider_sid="SM42", status="sent")
    before = scrape(client)
    params = {"MessageSid": "SM42", "MessageStatus": "undelivered", "ErrorCode": "30003"}
    signature = RequestValidator("primary-token").compute_signature(
        "https://hooks.example.com" + STATUS_WEBHOOK, params
    )
    form = "application/x-www-form-urlencoded"

    accepted = client.post(
        STATUS_WEBHOOK, urlencode(params), content_type=form, HTTP_X_TWILIO_SIGNATURE=signature
    )
    refused = client.post(STATUS_WEBHOOK, urlencode(params), content_type=form)
    after = scrape(client)

    assert (accepted.status_code, refused.status_code) == (200, 403)
    moved = "decisioning_messages_total"
    assert (
        value(after, moved, status="undelivered") - value(before, moved, status="undelivered") == 1
    )
    errors = "decisioning_provider_errors_total"
    assert value(after, errors, code="30003") - value(before, errors, code="30003") == 1
    rejected = "decisioning_webhook_rejections_total"
    labels = {"kind": "status", "reason": "invalid_signature"}
    assert value(after, rejected, **labels) - value(before, rejected, **labels) == 1


def publish_two_backtests() -> None:
    from config.celery import app

    for _ in range(2):
        app.send_task("decisions.backtest_run", args=(0,), queue="backtests")


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["filesystem", "redis"])
def test_it_reads_queue_depth_and_oldest_age_from_the_broker(
    client, private_broker, tmp_path, kind
):
    redis_server = RedisServer(tmp_path) if kind == "redis" else None
    private_broker(redis_server.start() if redis_server else "filesystem://")
    try:
        sent_at = time.time()
        publish_two_backtests()
        samples = scrape(client)
    finally:
        if redis_server:
            redis_server.stop()

    assert telemetry.celery_queues_in_use() == ["backtests", "celery", "heavy"]
    assert value(samples, "decisioning_celery_queue_length", queue="backtests") == 2
    assert value(samples, "decisioning_celery_queue_length", queue="celery") == 0
    age = samples[
        ("decisioning_celery_queue_oldest_age_seconds", frozenset({("queue", "backtests")}))
    ]
    assert 0 < age <= time.time() - sent_at
    assert ("decisioning_celery_queue_oldest_age_seconds", frozenset({("queue", "heavy")})) in (
        samples
    )


@pytest.mark.django_db
def test_it_exports_the_review_queue_and_the_worst_drift_of_each_model_version(client):
    empty = scrape(client)
    assert value(empty, "decisioning_review_queue_size") == 0

    rule_with_version(condition="event.amount > 1000", outcome="review")
    for amount in (2000, 3000, 5):
        register_event({"amount": amount})
    ended = timezone.now()
    for feature, psi in (("age", 0.04), ("amount", 0.31), ("(score)", 0.12)):
        DriftMeasurement.objects.create(
            model_id="credit-default",
            model_version=3,
            feature=feature,
            psi=psi,
            sample_size=500,
            window_start=ended - timedelta(days=1),
            window_end=ended,
        )
    samples = scrape(client)
    assert value(samples, "decisioning_review_queue_size") == 2  # two review decisions
    assert value(samples, "decisioning_review_queue_oldest_age_seconds") > 0
    drift = value(samples, "decisioning_model_drift_psi_worst", model="credit-default", version="3")
    assert drift == 0.31
