"""How services start Celery tasks: by name, after commit, so no service imports `tasks`.

The task modules import the services; naming the task here instead keeps the dependency one
way (tasks -> services -> enqueue) with no import hidden in a function body.
"""

from collections.abc import Iterable
from typing import Any

from celery import current_app
from django.db import transaction

MESSAGE_SEND = "campaigns.message_send"
MESSAGES_SEND = "campaigns.messages_send"
# Routed to the heavy queue (CELERY_TASK_ROUTES), with a soft time limit.
CAMPAIGN_JOB_RUN = "campaigns.campaign_job_run"


def task_enqueue(name: str, *args: Any, **options: Any) -> None:
    """Enqueue a task by its registered name (with apply_async's options, e.g. countdown)."""
    app = current_app
    if app.conf.task_always_eager and name not in app.tasks:
        # Eager mode runs the task here, so it must be registered here: Celery's own
        # autodiscovery imports every app's tasks module.
        app.loader.import_default_modules()
    app.signature(name, args=args, **options).apply_async()


def messages_send_on_commit(batches: Iterable[list[int]]) -> None:
    """Once the caller's transaction commits, enqueue one send task per batch of message ids
    (none on rollback)."""
    pending = [batch for batch in batches if batch]

    def enqueue() -> None:
        for batch in pending:
            task_enqueue(MESSAGES_SEND, batch)

    transaction.on_commit(enqueue)
