"""A task enqueued during a request logs that request's id, carried in the task's headers.

The request publishes a real message to a broker folder; the test then takes that message and
runs it the way a worker does (Celery's worker Request, with the boot steps config/celery.py
gives every worker), in a fresh context that shares nothing with the request but the message.
"""

import contextvars
import json
from datetime import timedelta

import pytest
from celery.worker.request import Request
from django.utils import timezone
from django_structlog.celery.steps import DjangoStructLogInitStep
from kombu import Connection

from config.celery import app
from decisions.models import Backtest
from decisions.tests.factories import register_event, rule_with_version
from tests.support.private_broker import private_broker

__all__ = ["private_broker"]  # the fixture
REQUEST_ID = "req-7f3a-propagated"


def message_in(folder, queue: str):
    with Connection(
        "filesystem://",
        transport="core.broker:AtomicFilesystemTransport",
        transport_options={"data_folder_in": str(folder), "data_folder_out": str(folder)},
    ) as connection:
        simple = connection.SimpleQueue(queue, no_ack=True)
        message = simple.get(timeout=5)
        simple.close()
    return message


def run_as_a_worker(message) -> None:
    """What a worker does with a message: its boot steps exist, then the task request runs."""
    steps = [step(parent=None) for step in app.steps["worker"]]  # held: receivers are weak
    task = app.tasks[message.headers["task"]]
    Request(message, app=app, task=task).execute()
    del steps


# Committed for real, as in production: the task is published when the request's transaction
# commits, while the request (and its id) is still being served.
@pytest.mark.django_db(transaction=True)
def test_a_task_enqueued_by_a_request_logs_that_requests_id(
    api_client, settings, private_broker, capfd
):
    assert DjangoStructLogInitStep in app.steps["worker"]
    folder = private_broker("filesystem://")
    settings.DECISIONS_BACKTEST_INLINE_MAX_EVENTS = 0  # every backtest goes to the worker
    rule_with_version(condition="event.amount > 1000", outcome="review")
    register_event({"amount": 2000})
    draft = rule_with_version(condition="event.amount > 100", outcome="review", status="draft")
    app.loader.import_default_modules()  # the tasks, as a worker imports them when it starts

    response = api_client.post(
        "/api/v1/backtests/",
        {
            "candidates": [{"rule_key": "high-amount", "version": draft.number}],
            "window_start": (timezone.now() - timedelta(hours=1)).isoformat(),
        },
        format="json",
        HTTP_X_REQUEST_ID=REQUEST_ID,
    )
    assert response.status_code == 202, response.content
    message = message_in(folder, settings.DECISIONS_BACKTEST_QUEUE)
    capfd.readouterr()  # the request's lines
    contextvars.Context().run(run_as_a_worker, message)

    assert Backtest.objects.get().status == "completed"
    worker_lines = [
        json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")
    ]
    events = {line["event"] for line in worker_lines}
    assert {"task_started", "task_succeeded"} <= events
    assert any(line["logger"] == "celery.app.trace" for line in worker_lines)  # Celery's own
    assert {line.get("request_id") for line in worker_lines} == {REQUEST_ID}
