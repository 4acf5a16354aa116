"""Celery tasks of the decisions app: thin wrappers over services.

Only Celery's autodiscovery imports this module; services enqueue by name (decisions.enqueue).
"""

from celery import shared_task

from decisions import enqueue, services


@shared_task(name=enqueue.BACKTEST_RUN)
def backtest_run_task(backtest_id: int) -> None:
    """Run a queued backtest; a missing or finished backtest is left alone."""
    services.backtest_run(backtest_id=backtest_id)
