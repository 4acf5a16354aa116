"""Decisions that know history, on the running stack: a real HTTP server in front of the app,
API keys with only the scopes each step needs, and a real Celery worker for what runs after
commit (webhook actions) or on a schedule (drift). Every decision made here replays exactly."""

import json
import threading
import time
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
import requests
from django.utils import timezone

from core.access import Scope
from core.services import api_key_create
from decisions import selectors, services, signing
from decisions.models import Decision, RuleVersion, WebhookAttempt, WebhookDelivery
from decisions.tests.factories import rule_with_version
from decisions.tests.test_webhooks import Receiver
from records.models import DriftMeasurement
from records.tasks import drift_measure_task
from records.tests.test_drift import predictions
from risk.tests.factories import applicant

pytestmark = pytest.mark.django_db(transaction=True)


class Api:
    """`requests` against the live server with an API key that carries exactly `scopes`."""

    def __init__(self, base_url: str, *scopes: str) -> None:
        _key, raw = api_key_create(name="-".join(scopes), scopes=list(scopes))
        self.base_url = base_url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Api-Key {raw}"

    def post(self, path: str, body: dict[str, Any] | None = None) -> requests.Response:
        headers = {"Idempotency-Key": str(uuid.uuid4())} if path == "/api/v1/events/" else {}
        return self.session.post(f"{self.base_url}{path}", json=body, headers=headers, timeout=30)

    def get(self, path: str) -> requests.Response:
        return self.session.get(f"{self.base_url}{path}", timeout=30)


def decide(api: Api, payload: dict[str, Any], **extra: Any) -> dict[str, Any]:
    body = {"type": "loan_application", "payload": payload, **extra}
    response = api.post("/api/v1/events/", body)
    assert response.status_code == 201, response.text
    return response.json()["decision"]


def assert_replays(reader: Api, decisions: list[dict[str, Any]]) -> None:
    for decision in decisions:
        report = reader.post(f"/api/v1/decisions/{decision['id']}/replay/").json()
        assert report["matches"], report["differences"]
        assert report["replayed"]["outcome"] == decision["outcome"]


@pytest.fixture
def integrator(live_server) -> Api:
    return Api(live_server.url, Scope.EVENTS_WRITE)


@pytest.fixture
def reader(live_server) -> Api:
    return Api(live_server.url, Scope.DECISIONS_READ)


def test_velocity_and_similar_cases_decide_over_http_and_replay(integrator, reader, credit_model):
    services.velocity_aggregate_save(
        event_type="loan_application", name="tx_1h", function="count",
        key_field="customer_id", window_seconds=3600,
    )  # fmt: skip
    services.velocity_aggregate_save(
        event_type="loan_application", name="amount_24h", function="sum",
        key_field="customer_id", field="amount", window_seconds=86400,
    )  # fmt: skip
    rule_with_version(key="flagged", condition="event.flagged == true", outcome="decline")
    rule_with_version(
        key="burst",
        condition="velocity.tx_1h >= 2 || velocity.amount_24h > 10000",
        outcome="decline",
        priority=2,
    )
    rule_with_version(
        key="like-declined",
        condition="similar.count >= 3 && similar.declined_share >= 0.5",
        outcome="review",
        priority=3,
    )
    scored = {"model_id": "credit-default"}

    # A customer's third event within the hour is declined on velocity; another's first is not.
    own = [decide(integrator, {"customer_id": "c-1", "amount": 100 * n}) for n in (1, 2, 3)]
    other = decide(integrator, {"customer_id": "c-2", "amount": 100})
    # Three near copies of one applicant are declined; the next like them goes to review.
    declined = [
        decide(integrator, {"flagged": True}, risk=scored | {"features": applicant(0, age=30 + n)})
        for n in range(3)
    ]
    lookalike = decide(integrator, {"flagged": False}, risk=scored | {"features": applicant(0)})

    assert [d["outcome"] for d in own] == ["approve", "approve", "decline"]
    assert own[2]["matched_rule"] == {"key": "burst", "version": 1}
    assert own[2]["history"]["velocity"] == {"tx_1h": 2, "amount_24h": 300}
    assert other["outcome"] == "approve"
    assert [d["outcome"] for d in declined] == ["decline"] * 3
    assert lookalike["outcome"] == "review"
    assert lookalike["matched_rule"] == {"key": "like-declined", "version": 1}
    assert lookalike["history"]["similar"]["declined_share"] == 1.0
    assert {case["decision_id"] for case in lookalike["history"]["similar"]["neighbours"]} == {
        d["id"] for d in declined
    }
    assert lookalike["reasons"][0] == {
        "kind": "rule",
        "code": "like-declined",
        "text": "Like Declined",
    }
    assert [reason["kind"] for reason in lookalike["reasons"][1:]] == ["driver"] * (
        len(lookalike["reasons"]) - 1
    )
    assert_replays(reader, [*own, other, *declined, lookalike])


def test_a_review_case_is_claimed_and_resolved_over_http(live_server, integrator):
    rule_with_version(condition="event.amount > 1000", outcome="review")
    decision = decide(integrator, {"amount": 5000})
    reviews_reader = Api(live_server.url, Scope.REVIEWS_READ)
    reviewer = Api(live_server.url, Scope.REVIEWS_WRITE)

    [case] = reviews_reader.get("/api/v1/reviews/").json()["results"]
    refused = reviews_reader.post(f"/api/v1/reviews/{case['id']}/claim/")
    claimed = reviewer.post(f"/api/v1/reviews/{case['id']}/claim/")
    resolved = reviewer.post(
        f"/api/v1/reviews/{case['id']}/resolve/", {"resolution": "decline", "note": "Forged ID."}
    )

    assert case["decision_id"] == decision["id"]
    assert refused.status_code == 403
    assert claimed.json()["claim_active"] is True
    assert resolved.json()["resolution"] == "decline"
    # The resolution sits beside the engine's decision, which stays as it was.
    assert Decision.objects.get(pk=decision["id"]).outcome == "review"
    assert reviews_reader.get("/api/v1/reviews/?status=open").json()["results"] == []


def test_a_future_dated_version_takes_over_at_its_time_with_no_gap(integrator, reader):
    current = rule_with_version(key="limit", condition="event.amount > 100", outcome="review")
    start = timezone.now() + timedelta(seconds=3)
    upcoming = services.rule_version_create(
        rule=current.rule,
        condition="event.amount > 10",
        outcome="decline",
        priority=10,
        effective_from=start,
    )
    assert services.rule_version_publish(version=upcoming).status == RuleVersion.Status.SCHEDULED

    # Events arrive steadily across the take-over; each is decided by one version or the other.
    decided: list[dict[str, Any]] = []
    deadline = time.monotonic() + 60
    while not decided or decided[-1]["outcome"] != "decline":
        assert time.monotonic() < deadline, "the scheduled version never took over"
        decided.append(decide(integrator, {"amount": 500}))

    received = {
        event_id: received_at
        for event_id, received_at in Decision.objects.filter(
            pk__in=[d["id"] for d in decided]
        ).values_list("event_id", "event__received_at")
    }
    by_version = [(d["matched_rule"]["version"], received[d["event_id"]] >= start) for d in decided]
    assert set(by_version) == {(1, False), (2, True)}  # no event fell between the two
    assert by_version == sorted(by_version)  # and none went back to the old one
    assert_replays(reader, decided[-3:] + decided[:1])


def test_a_ten_percent_canary_decides_about_a_tenth_of_the_events(integrator, reader):
    """Over HTTP with 100 customers; decisions/tests/test_rollouts.py decides 1,000 in-process
    (the same service, without the HTTP round trip that would cost this suite a minute)."""
    control = rule_with_version(key="limit", condition="event.amount > 100", outcome="review")
    candidate = services.rule_version_create(
        rule=control.rule, condition="event.amount > 50", outcome="decline", priority=10
    )
    services.rule_version_canary(version=candidate, percent=10, key="customer_id")

    results = [decide(integrator, {"customer_id": f"c{n}", "amount": 70}) for n in range(100)]

    arms = Counter(d["arms"]["limit"]["arm"] for d in results)
    outcomes = Counter((d["arms"]["limit"]["arm"], d["outcome"]) for d in results)
    assert 1 <= arms["canary"] <= 19  # 10 expected; three standard deviations either way
    assert outcomes == {
        ("canary", "decline"): arms["canary"],
        ("control", "approve"): arms["control"],
    }
    comparison = selectors.canary_comparison(rule=control.rule)  # what the rule page shows
    assert comparison is not None
    assert comparison["canary"]["outcomes"] == {"decline": arms["canary"]}
    assert comparison["control"]["outcomes"] == {"approve": arms["control"]}
    assert_replays(reader, results[::10])


def test_the_worker_delivers_a_webhook_once_despite_a_failing_first_attempt_and_measures_drift(
    celery_worker,
    live_server,
    integrator,
    reader,
    credit_model,
    settings,
):
    settings.DECISIONS_WEBHOOK_ALLOW_LOOPBACK_HTTP = True
    receiver = Receiver(failures=1)
    threading.Thread(target=receiver.server.serve_forever, daemon=True).start()
    celery_worker.start(
        env={
            "DECISIONS_WEBHOOK_ALLOW_LOOPBACK_HTTP": "true",
            "DECISIONS_WEBHOOK_BACKOFF_SECONDS": "0.2",
            "RECORDS_DRIFT_WINDOW_DAYS": "2",
        }
    )
    _endpoint, secret = services.webhook_endpoint_create(name="case_system", url=receiver.url)
    rule_with_version(outcome="review", actions=[{"type": "webhook", "endpoint": "case_system"}])
    predictions(credit_model, shifted=True)

    decision = decide(integrator, {"amount": 5000})
    drift_measure_task.delay()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        delivery = WebhookDelivery.objects.filter(decision_id=decision["id"]).first()
        if delivery and delivery.status == "delivered" and DriftMeasurement.objects.exists():
            break
        assert celery_worker.process.poll() is None, celery_worker.log()[-3000:]
        time.sleep(0.05)
    receiver.server.shutdown()

    assert delivery is not None
    assert delivery.status == "delivered", celery_worker.log()[-3000:]
    attempts = list(WebhookAttempt.objects.filter(delivery=delivery).values_list("status_code"))
    assert attempts == [(500,), (204,)]
    bodies = [json.loads(body)["decision"]["id"] for _headers, body in receiver.received]
    assert bodies == [decision["id"], decision["id"]]  # one delivery: the retry, never a copy
    headers, body = receiver.received[-1]
    assert signing.signature_verify(
        secret=secret, body=body, header=headers["Webhook-Signature"], now=int(time.time())
    )
    psi = dict(DriftMeasurement.objects.values_list("feature", "psi"))
    assert psi["credit_amount"] >= 0.25
    assert psi["age"] >= 0.25
    metrics = requests.get(f"{live_server.url}/metrics", timeout=30).text
    gauge = [line for line in metrics.splitlines() if line.startswith("decisioning_model_drift")]
    assert gauge
    assert float(gauge[0].rsplit(" ", 1)[1]) == pytest.approx(max(psi.values()))
    assert_replays(reader, [decision])
