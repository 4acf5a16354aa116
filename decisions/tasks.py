"""Celery tasks of the decisions app: thin wrappers over services.

Only Celery's autodiscovery imports this module; services enqueue by name (decisions.enqueue).
"""

from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from decisions import enqueue, services, velocity


@shared_task(
    name=enqueue.BACKTEST_RUN,
    soft_time_limit=settings.DECISIONS_BACKTEST_SOFT_TIME_LIMIT,
    time_limit=settings.DECISIONS_BACKTEST_SOFT_TIME_LIMIT + 30,
)
def backtest_run_task(backtest_id: int) -> None:
    """Run a queued backtest; a missing or finished backtest is left alone.

    Past the soft time limit the service marks the backtest failed (its error names the limit)
    and the task ends without a retry: the same window would only run out of time again.
    """
    try:
        services.backtest_run(backtest_id=backtest_id)
    except SoftTimeLimitExceeded:
        return


@shared_task(name="decisions.event_payloads_purge", ignore_result=True)
def event_payloads_purge_task() -> int:
    """Daily (beat): blank the payloads past their retention."""
    return services.event_payloads_purge().deleted


@shared_task(
    name=enqueue.WEBHOOK_DELIVER,
    bind=True,
    max_retries=None,  # the service counts tries (DECISIONS_WEBHOOK_MAX_ATTEMPTS)
    ignore_result=True,
    soft_time_limit=int(settings.DECISIONS_WEBHOOK_TIMEOUT_SECONDS) + 30,
)
def webhook_deliver_task(self: Task, delivery_id: int) -> None:
    """One try at a webhook delivery; a failed try comes back after the service's backoff."""
    retry_in = services.webhook_delivery_attempt(delivery_id=delivery_id)
    if retry_in is not None:
        raise self.retry(countdown=retry_in)


@shared_task(name=enqueue.VELOCITY_INDEXES_SYNC, ignore_result=True)
def velocity_indexes_sync_task() -> None:
    """Build the indexes velocity keys need and drop those no aggregate needs (concurrently)."""
    velocity.velocity_indexes_sync()


@shared_task(name="decisions.rule_versions_activate_due", ignore_result=True)
def rule_versions_activate_due_task() -> int:
    """Every minute (beat): file the scheduled versions whose time has come as published."""
    return len(services.rule_versions_activate_due())
