"""Services enqueue this app's Celery tasks here, by task name and after commit.

Sending by name keeps `decisions.tasks` (which imports the services) out of the services'
imports: only Celery's autodiscovery imports the tasks module.
"""

from typing import Any

from celery import current_app
from django.conf import settings
from django.db import transaction

BACKTEST_RUN = "decisions.backtest_run"
WEBHOOK_DELIVER = "decisions.webhook_deliver"
VELOCITY_INDEXES_SYNC = "decisions.velocity_indexes_sync"


def _send_on_commit(name: str, *args: Any, queue: str | None = None) -> None:
    def send() -> None:
        if current_app.conf.task_always_eager:
            # What .delay() does in eager mode; send_task ignores it. Autodiscovery first, as a
            # worker does when it starts: nothing in the web process imports the tasks module.
            current_app.loader.import_default_modules()
            current_app.tasks[name].apply(args=args)
        else:
            current_app.send_task(name, args=args, queue=queue)

    transaction.on_commit(send)


def backtest_run_enqueue(*, backtest_id: int) -> None:
    """Run the backtest in a worker once the transaction that created it commits.

    On its own queue (settings.CELERY_TASK_ROUTES names the same one), so a long backtest never
    holds up SMS sending; named at send time too, so it follows the setting as read now.
    """
    _send_on_commit(BACKTEST_RUN, backtest_id, queue=settings.DECISIONS_BACKTEST_QUEUE)


def webhook_deliver_enqueue(*, delivery_id: int) -> None:
    """Send the webhook once the decision that made the delivery commits (never before)."""
    _send_on_commit(WEBHOOK_DELIVER, delivery_id)


def velocity_indexes_sync_enqueue() -> None:
    """Once an aggregate's declaration or removal commits, build or drop the expression indexes
    on velocity keys to match."""
    _send_on_commit(VELOCITY_INDEXES_SYNC)
