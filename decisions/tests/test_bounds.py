"""What is expensive is bounded: payload lists (what a CEL comprehension walks) and backtests
(one per rule at a time, a capped window, their own queue and a time limit)."""

from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from core.errors import InvalidInput
from decisions import services
from decisions.exceptions import BacktestInProgress
from decisions.models import Backtest, Decision, Event
from decisions.tasks import backtest_run_task
from decisions.tests.factories import register_event, rule_with_version

pytestmark = pytest.mark.django_db


def post_event(client, payload):
    return client.post(
        "/api/v1/events/",
        {"type": "loan_application", "payload": payload},
        format="json",
        HTTP_IDEMPOTENCY_KEY="bounds-1",
    )


def test_it_refuses_a_payload_list_over_the_cap_naming_the_field(api_client):
    items = list(range(services.MAX_PAYLOAD_LIST_ITEMS + 1))

    response = post_event(api_client, {"order": {"items": items}})

    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/problem+json")
    assert "payload.order.items" in response.json()["errors"]
    assert not Event.objects.exists()
    assert not Decision.objects.exists()


def test_it_accepts_a_payload_list_at_the_cap(api_client):
    items = list(range(services.MAX_PAYLOAD_LIST_ITEMS))

    assert post_event(api_client, {"items": items}).status_code == 201


def test_it_refuses_a_payload_with_too_many_values_in_all(api_client):
    rows = [list(range(200)) for _ in range(services.MAX_PAYLOAD_VALUES // 200 + 1)]

    response = post_event(api_client, {"rows": rows})

    assert response.status_code == 400
    assert "payload" in response.json()["errors"]
    assert not Event.objects.exists()


def window(days=1):
    now = timezone.now()
    return {"window_start": now - timedelta(days=days), "window_end": now + timedelta(minutes=1)}


def test_a_second_backtest_of_a_rule_is_refused_while_one_is_queued(settings, api_client):
    settings.DECISIONS_BACKTEST_INLINE_MAX_EVENTS = 0  # every backtest goes to the worker
    draft = rule_with_version(status="draft")
    register_event({"amount": 5000})
    candidates = [{"rule_key": draft.rule.key, "version": draft.number}]
    first = services.backtest_create(candidates=candidates, **window())

    with pytest.raises(BacktestInProgress) as refused:
        services.backtest_create(candidates=candidates, **window())
    response = api_client.post(
        "/api/v1/backtests/",
        {
            "rule_key": draft.rule.key,
            "version": draft.number,
            "window_start": "2026-01-01T00:00Z",
            "window_end": "2026-01-02T00:00Z",
        },
        format="json",
    )

    assert first.status == Backtest.Status.QUEUED
    assert refused.value.status == 409
    assert response.status_code == 409
    assert response.json()["backtest_id"] == first.pk
    assert Backtest.objects.count() == 1


def test_a_backtest_of_another_rule_or_after_the_first_finished_runs(settings):
    settings.DECISIONS_BACKTEST_INLINE_MAX_EVENTS = 0
    draft = rule_with_version(status="draft")
    other = rule_with_version(key="other-rule", status="draft")
    register_event({"amount": 5000})
    first = services.backtest_create(
        candidates=[{"rule_key": draft.rule.key, "version": draft.number}], **window()
    )

    services.backtest_create(
        candidates=[{"rule_key": other.rule.key, "version": other.number}], **window()
    )
    backtest_run_task(first.pk)
    again = services.backtest_create(
        candidates=[{"rule_key": draft.rule.key, "version": draft.number}], **window()
    )

    assert again.status == Backtest.Status.QUEUED
    assert Backtest.objects.count() == 3


def test_a_backtest_window_longer_than_the_cap_is_refused(settings):
    draft = rule_with_version(status="draft")

    with pytest.raises(InvalidInput) as refused:
        services.backtest_create(
            candidates=[{"rule_key": draft.rule.key, "version": draft.number}],
            **window(days=settings.DECISIONS_BACKTEST_MAX_WINDOW_DAYS + 1),
        )

    assert "window_start" in refused.value.errors
    assert not Backtest.objects.exists()


def test_a_backtest_over_too_many_events_is_refused_and_leaves_nothing(settings, api_client):
    settings.DECISIONS_BACKTEST_MAX_EVENTS = 2
    draft = rule_with_version(status="draft")
    for amount in (1, 2, 3):
        register_event({"amount": amount})
    now = timezone.now()

    response = api_client.post(
        "/api/v1/backtests/",
        {
            "rule_key": draft.rule.key,
            "version": draft.number,
            "window_start": (now - timedelta(hours=1)).isoformat(),
            "window_end": (now + timedelta(minutes=1)).isoformat(),
        },
        format="json",
    )

    assert response.status_code == 400
    assert "window_start" in response.json()["errors"]
    assert not Backtest.objects.exists()


def test_backtests_run_on_their_own_queue_with_a_soft_time_limit():
    route = django_settings.CELERY_TASK_ROUTES["decisions.backtest_run"]

    assert route == {"queue": django_settings.DECISIONS_BACKTEST_QUEUE}
    assert backtest_run_task.soft_time_limit == django_settings.DECISIONS_BACKTEST_SOFT_TIME_LIMIT
    assert backtest_run_task.time_limit > backtest_run_task.soft_time_limit
