"""The decisions API through the DRF test client: events, decisions, rules, backtests."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from core.idempotency import request_fingerprint
from core.models import IdempotencyRecord
from decisions.api.serializers import EventRegisteredSerializer, event_registered_body
from decisions.models import Backtest, Decision, Event, RuleVersion
from decisions.services import events
from decisions.tasks import backtest_run_task
from decisions.tests.factories import register_event, rule_with_version
from records.selectors import demo_applicants

pytestmark = pytest.mark.django_db


@pytest.fixture
def events_client(staff_user):
    """A session-authenticated client: its idempotency scope is `user:<pk>`."""
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_login(staff_user)
    return client


EVENT = {"type": "loan_application", "payload": {"amount": 5000, "country": "DE"}}


def post_event(client, body, key="key-1"):
    return client.post("/api/v1/events/", body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_it_registers_an_event_and_answers_the_decision(events_client):
    version = rule_with_version(condition="event.amount > 1000", outcome="review")

    response = post_event(events_client, EVENT)

    assert response.status_code == 201
    body = response.json()
    decision = Decision.objects.get()
    assert body["event_id"] == decision.event_id
    assert body["decision"]["id"] == decision.pk
    assert body["decision"]["outcome"] == "review"
    assert body["decision"]["matched_rule"] == {"key": "high-amount", "version": version.number}
    assert body["decision"]["trace"][0]["result"] == "true"
    assert decision.event.idempotency_key == "key-1"


def test_it_requires_an_idempotency_key(events_client):
    response = events_client.post("/api/v1/events/", EVENT, format="json")

    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["errors"]
    assert not Event.objects.exists()


def test_it_replays_the_stored_response_for_the_same_key_and_body(events_client):
    first = post_event(events_client, EVENT)
    second = post_event(events_client, EVENT)

    assert second.status_code == 201
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert Event.objects.count() == 1
    assert Decision.objects.count() == 1


def test_it_replays_the_very_bytes_it_sent_the_first_time(events_client):
    """Stripe's promise: the same response, keys in the same order, not just equal JSON."""
    first = post_event(events_client, EVENT)
    second = post_event(events_client, EVENT)

    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.content == first.content
    assert list(second.json()) == list(first.json())


def test_it_answers_422_for_the_same_key_with_a_different_body(events_client):
    post_event(events_client, EVENT)

    response = post_event(events_client, {**EVENT, "payload": {"amount": 1}})

    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    assert Event.objects.count() == 1


def test_it_answers_409_for_a_matching_body_still_in_flight(events_client, staff_user):
    IdempotencyRecord.objects.create(
        scope=f"user:{staff_user.pk}",
        key="key-1",
        fingerprint=request_fingerprint(method="POST", path="/api/v1/events/", body=EVENT),
    )

    response = post_event(events_client, EVENT)

    assert response.status_code == 409
    assert not Event.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"payload": {}}, "type"),
        ({"type": "Bad Type", "payload": {}}, "type"),
        ({"type": "loan_application", "payload": [1]}, "payload"),
        ({"type": "loan_application", "payload": {}, "risk": {"features": {}}}, "risk.model_id"),
    ],
)
def test_it_rejects_bad_events_naming_the_field_and_storing_nothing(events_client, body, field):
    response = post_event(events_client, body)

    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert not Event.objects.exists()
    assert not IdempotencyRecord.objects.exists()


def test_it_stores_the_risk_request_and_the_score(events_client, credit_model):
    features = demo_applicants()[2]
    body = {**EVENT, "risk": {"model_id": "credit-default", "features": features}}

    response = post_event(events_client, body)

    assert response.status_code == 201
    assert Event.objects.get().risk_request == {"model_id": "credit-default", "features": features}
    risk = response.json()["decision"]["risk"]
    assert 0 <= risk["score"] <= 1
    assert risk["label"] in ("low", "medium", "high")


def test_its_answer_is_the_registered_serializers_data_event_after_event(credit_model):
    rule_with_version(condition="event.amount > 1000", outcome="review")
    rule_with_version(key="shadowed", condition="event.amount > 10", status="shadow")
    risk = {"model_id": "credit-default", "features": demo_applicants()[2]}
    decisions = [
        events.event_register(
            event_type="loan_application",
            payload={"amount": 5000},
            idempotency_key=f"key-{number}",
            client_scope="test",
            fingerprint="0" * 64,
            risk_request=risk if number else None,
        )
        for number in range(2)
    ]

    for decision in decisions:
        expected = EventRegisteredSerializer({"event_id": decision.event_id, "decision": decision})
        body = event_registered_body(decision)
        assert JSONRenderer().render(body) == JSONRenderer().render(expected.data)
    assert [reason["kind"] for reason in body["decision"]["reasons"]][:2] == ["rule", "driver"]
    assert body["decision"]["risk"]["record_id"] == decisions[1].risk_record_id


def test_it_lists_decisions_with_filters_in_a_fixed_number_of_queries(
    api_client, django_assert_num_queries
):
    rule_with_version(condition="event.amount > 1000", outcome="review")
    for amount in (10, 5000, 6000, 20):
        register_event({"amount": amount})
    register_event({"amount": 1}, event_type="signup")

    with django_assert_num_queries(3):  # API key, count, page
        response = api_client.get("/api/v1/decisions/", {"page_size": 2})
    reviewed = api_client.get("/api/v1/decisions/", {"outcome": "review"}).json()
    by_rule = api_client.get("/api/v1/decisions/", {"rule": "high-amount"}).json()
    signups = api_client.get("/api/v1/decisions/", {"event_type": "signup"}).json()
    future = api_client.get(
        "/api/v1/decisions/",
        {"decided_after": (timezone.now() + timedelta(hours=1)).isoformat()},
    ).json()

    assert response.status_code == 200
    assert response.json()["count"] == 5
    assert len(response.json()["results"]) == 2
    assert reviewed["count"] == 2
    assert by_rule["count"] == 2
    assert signups["count"] == 1
    assert future["count"] == 0


def test_it_shows_a_decision_with_event_and_trace(api_client):
    decision = register_event({"amount": 3})

    body = api_client.get(f"/api/v1/decisions/{decision.pk}/").json()

    assert body["event"]["payload"] == {"amount": 3}
    assert body["trace"] == []
    assert api_client.get("/api/v1/decisions/999999/").status_code == 404


def test_it_replays_a_decision_over_the_api(api_client):
    rule_with_version(condition="event.amount > 1000", outcome="review")
    decision = register_event({"amount": 3000})

    response = api_client.post(f"/api/v1/decisions/{decision.pk}/replay/")

    assert response.status_code == 200
    assert response.json()["matches"] is True
    assert response.json()["replayed"]["outcome"] == "review"


def test_it_manages_rules_and_versions_over_the_api(api_client):
    created = api_client.post(
        "/api/v1/rules/",
        {"key": "big", "name": "Big", "event_type": "loan_application"},
        format="json",
    )
    draft = api_client.post(
        "/api/v1/rules/big/versions/",
        {"condition": "event.amount > 10", "outcome": "review", "priority": 3},
        format="json",
    )
    published = api_client.post("/api/v1/rules/big/versions/1/publish/")
    retired = api_client.post("/api/v1/rules/big/versions/1/retire/")
    again = api_client.post("/api/v1/rules/big/versions/1/publish/")
    rolled_back = api_client.post("/api/v1/rules/big/versions/1/rollback/")
    listing = api_client.get("/api/v1/rules/").json()

    assert created.status_code == 201
    assert draft.status_code == 201
    assert draft.json()["status"] == "draft"
    assert published.json()["status"] == "published"
    assert retired.json()["status"] == "retired"
    assert again.status_code == 409
    assert again.json()["code"] == "rule_version_state_conflict"
    assert rolled_back.json()["number"] == 2
    assert listing["results"][0]["published_version"] == 2
    assert api_client.get("/api/v1/rules/nope/").status_code == 404
    assert api_client.post("/api/v1/rules/big/versions/9/publish/").status_code == 404


def test_it_answers_cel_errors_with_their_position(api_client):
    api_client.post(
        "/api/v1/rules/", {"key": "big", "name": "Big", "event_type": "loan"}, format="json"
    )

    response = api_client.post(
        "/api/v1/rules/big/versions/",
        {"condition": "event.amount >", "outcome": "review", "priority": 3},
        format="json",
    )

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_expression"
    assert (body["line"], body["column"]) == (1, 15)
    assert "condition" in body["errors"]
    assert not RuleVersion.objects.exists()


def test_it_shadows_over_the_api(api_client):
    rule_with_version(status="draft")

    response = api_client.post("/api/v1/rules/high-amount/versions/1/shadow/")

    assert response.json()["status"] == "shadow"


def test_it_backtests_a_draft_and_changes_nothing_stored(api_client):
    rule_with_version(condition="event.amount > 1000", outcome="review")
    for amount in (10, 500, 2000, 5000):
        register_event({"amount": amount})
    draft = rule_with_version(condition="event.amount > 100", outcome="review", status="draft")
    before = list(Decision.objects.order_by("id").values_list("id", "outcome", "trace"))
    window = {
        "window_start": (timezone.now() - timedelta(hours=1)).isoformat(),
        "window_end": (timezone.now() + timedelta(minutes=1)).isoformat(),
    }

    response = api_client.post(
        "/api/v1/backtests/",
        {"rule_key": "high-amount", "version": draft.number, **window},
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "completed"
    assert body["results"]["evaluated"] == 4
    assert body["results"]["changed"] == 1
    (transition,) = body["results"]["transitions"]
    assert (transition["from"], transition["to"], transition["count"]) == ("approve", "review", 1)
    changed_event = Decision.objects.get(outcome="approve", event__payload__amount=500).event_id
    assert transition["example_event_ids"] == [changed_event]
    assert list(Decision.objects.order_by("id").values_list("id", "outcome", "trace")) == before
    assert draft.__class__.objects.get(pk=draft.pk).status == "draft"
    status = api_client.get(f"/api/v1/backtests/{body['id']}/").json()
    assert status["progress"] == 1.0


def test_it_queues_large_backtests_for_a_worker(
    api_client, settings, django_capture_on_commit_callbacks
):
    settings.DECISIONS_BACKTEST_INLINE_MAX_EVENTS = 1
    settings.DECISIONS_BACKTEST_BATCH_SIZE = 2
    rule_with_version(condition="event.amount > 1000", outcome="decline")
    for amount in (10, 2000, 20, 3000, 30):
        register_event({"amount": amount})
    draft = rule_with_version(condition="event.amount > 15", outcome="decline", status="draft")
    window = {
        "window_start": (timezone.now() - timedelta(hours=1)).isoformat(),
        "window_end": (timezone.now() + timedelta(minutes=1)).isoformat(),
    }

    with django_capture_on_commit_callbacks() as callbacks:
        response = api_client.post(
            "/api/v1/backtests/",
            {"candidates": [{"rule_key": "high-amount", "version": draft.number}], **window},
            format="json",
        )
    assert response.status_code == 202
    assert response.json()["status"] == "queued"
    assert len(callbacks) == 1

    backtest_run_task.run(response.json()["id"])  # what the worker runs
    backtest_run_task.run(response.json()["id"])  # a redelivery leaves it alone

    backtest = Backtest.objects.get()
    assert backtest.status == "completed"
    assert (backtest.total, backtest.processed) == (5, 5)
    assert backtest.results["changed"] == 2
    assert backtest.results["transitions"][0]["from"] == "approve"


def test_it_backtests_the_last_30_days_when_no_window_is_given(api_client):
    # Given decided events 29 and 31 days old
    rule_with_version(condition="event.amount > 1000", outcome="review")
    recent = register_event({"amount": 500})
    old = register_event({"amount": 600})
    now = timezone.now()
    Event.objects.filter(pk=recent.event_id).update(received_at=now - timedelta(days=29))
    Event.objects.filter(pk=old.event_id).update(received_at=now - timedelta(days=31))
    draft = rule_with_version(condition="event.amount > 100", outcome="review", status="draft")

    # When a backtest names no window
    response = api_client.post(
        "/api/v1/backtests/", {"rule_key": "high-amount", "version": draft.number}, format="json"
    )

    # Then it covers the 30 days up to now: the recent event only
    assert response.status_code == 201, response.json()
    body = response.json()
    backtest = Backtest.objects.get()
    assert backtest.window_end - backtest.window_start == timedelta(days=30)
    assert now <= backtest.window_end <= timezone.now()
    assert body["results"]["evaluated"] == 1
    assert body["results"]["transitions"][0]["example_event_ids"] == [recent.event_id]


def test_it_refuses_a_backtest_window_longer_than_the_cap(api_client, settings):
    settings.DECISIONS_BACKTEST_MAX_WINDOW_DAYS = 10
    draft = rule_with_version(status="draft")
    end = timezone.now()

    response = api_client.post(
        "/api/v1/backtests/",
        {
            "rule_key": "high-amount",
            "version": draft.number,
            "window_start": (end - timedelta(days=11)).isoformat(),
            "window_end": end.isoformat(),
        },
        format="json",
    )

    assert response.status_code == 400
    assert "window_start" in response.json()["errors"]
    assert not Backtest.objects.exists()


def test_it_rejects_a_backtest_without_candidates_or_with_a_reversed_window(api_client):
    now = timezone.now().isoformat()
    missing = api_client.post(
        "/api/v1/backtests/", {"window_start": now, "window_end": now}, format="json"
    )
    rule_with_version(status="draft")
    reversed_window = api_client.post(
        "/api/v1/backtests/",
        {
            "rule_key": "high-amount",
            "version": 1,
            "window_start": now,
            "window_end": (timezone.now() - timedelta(days=1)).isoformat(),
        },
        format="json",
    )

    assert missing.status_code == 400
    assert "candidates" in missing.json()["errors"]
    assert reversed_window.status_code == 400
    assert not Backtest.objects.exists()


def test_it_refuses_anonymous_callers(client):
    assert client.get("/api/v1/decisions/").status_code in (401, 403)
    assert client.post("/api/v1/events/", EVENT, content_type="application/json").status_code in (
        401,
        403,
    )


def test_it_leaves_no_trace_when_registering_fails_and_accepts_the_retry(staff_user, monkeypatch):
    from rest_framework.test import APIClient

    client = APIClient(raise_request_exception=False)
    client.force_login(staff_user)
    real_dispatch = events.decision_actions_dispatch

    def explode(*, decision):
        raise RuntimeError("the SMS provider is down")

    monkeypatch.setattr(events, "decision_actions_dispatch", explode)
    failed = post_event(client, EVENT)
    monkeypatch.setattr(events, "decision_actions_dispatch", real_dispatch)

    assert failed.status_code == 500
    assert failed["Content-Type"] == "application/problem+json"
    assert not Event.objects.exists()
    assert not Decision.objects.exists()
    assert not IdempotencyRecord.objects.exists()
    retried = post_event(client, EVENT)
    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried.headers


def test_it_refuses_nul_characters_that_postgresql_cannot_store(events_client):
    response = post_event(events_client, {"type": "loan", "payload": {"name": "a\u0000b"}})

    assert response.status_code == 400
    assert "payload" in response.json()["errors"]
    assert not Event.objects.exists()


def test_it_answers_404_for_ids_that_are_not_numbers(api_client):
    assert api_client.get("/api/v1/decisions/abc/").status_code == 404
    assert api_client.post("/api/v1/decisions/abc/replay/").status_code == 404


def test_it_refuses_unpaired_surrogates(events_client):
    response = events_client.post(
        "/api/v1/events/",
        '{"type": "loan", "payload": {"name": "\\ud800"}}',
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="s-1",
    )

    assert response.status_code == 400
    assert not Event.objects.exists()


def test_it_lists_rules_with_versions_in_a_fixed_number_of_queries(
    api_client, django_assert_num_queries
):
    for index in range(4):
        rule_with_version(key=f"rule-{index}", condition="true", outcome="review")
        rule_with_version(key=f"rule-{index}", condition="false", outcome="review", status="draft")

    with django_assert_num_queries(5):  # API key, count, rules, versions, approvals
        response = api_client.get("/api/v1/rules/")

    results = response.json()["results"]
    assert [rule["published_version"] for rule in results] == [1, 1, 1, 1]
    assert all(len(rule["versions"]) == 2 for rule in results)
