"""A large backtest runs in a real Celery worker process and reports progress as it goes."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from decisions import services
from decisions.models import Decision
from decisions.tests.factories import register_event, rule_with_version


@pytest.mark.django_db(transaction=True)
def test_it_runs_a_large_backtest_in_a_worker_with_progress(celery_worker, settings):
    settings.DECISIONS_BACKTEST_INLINE_MAX_EVENTS = 2
    # Backtests go to their own queue; here it is the queue this test's worker consumes.
    settings.DECISIONS_BACKTEST_QUEUE = celery_worker.queue
    celery_worker.start(env={"DECISIONS_BACKTEST_BATCH_SIZE": "3"})
    rule_with_version(condition="event.amount > 1000", outcome="review")
    for amount in (10, 200, 2000, 300, 3000, 40, 500, 5000, 60, 700):
        register_event({"amount": amount})
    draft = rule_with_version(condition="event.amount > 100", outcome="review", status="draft")
    stored = list(Decision.objects.order_by("id").values_list("outcome", flat=True))

    backtest = services.backtest_create(
        candidates=[{"rule_key": "high-amount", "version": draft.number}],
        window_start=timezone.now() - timedelta(hours=1),
        window_end=timezone.now() + timedelta(minutes=1),
    )
    assert backtest.status == "queued"

    seen_progress = set()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        backtest.refresh_from_db()
        seen_progress.add(backtest.processed)
        if backtest.status in ("completed", "failed") or celery_worker.process.poll() is not None:
            break
        time.sleep(0.05)

    assert backtest.status == "completed", celery_worker.log()[-3000:]
    assert (backtest.total, backtest.processed) == (10, 10)
    assert backtest.results["changed"] == 4  # 200, 300, 500, 700 approve -> review
    assert seen_progress <= {0, 3, 6, 9, 10}
    assert list(Decision.objects.order_by("id").values_list("outcome", flat=True)) == stored
