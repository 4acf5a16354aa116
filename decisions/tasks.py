"""Celery tasks of the decisions app: thin wrappers over services."""

from celery import shared_task

from decisions import services


@shared_task(name="decisions.backtest_run")
def backtest_run_task(backtest_id: int) -> None:
    """Run a queued backtest; a missing or finished backtest is left alone."""
    services.backtest_run(backtest_id=backtest_id)
