"""A large backtest runs in a real Celery worker process and reports progress as it goes."""

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection
from django.utils import timezone
from kombu import pools

from config.celery import app
from decisions import services
from decisions.models import Decision
from decisions.tests.factories import register_event, rule_with_version

ROOT = Path(__file__).resolve().parent.parent


def reset_producers() -> None:
    # Celery and kombu cache producer pools per connection; drop them so the next publish
    # uses the broker options in force now.
    if app._pool is not None:
        app._pool.force_close_all()
    app._pool = None
    app.amqp._producer_pool = None
    pools.reset()


@pytest.fixture
def private_broker(tmp_path):
    """A filesystem broker of our own, so no other test's messages reach this worker."""
    folders = {name: tmp_path / "broker" / name for name in ("queue", "control")}
    for folder in folders.values():
        folder.mkdir(parents=True)
    options = {
        "data_folder_in": str(folders["queue"]),
        "data_folder_out": str(folders["queue"]),
        "control_folder": str(folders["control"]),
        "store_processed": False,
        "polling_interval": 0.1,
    }
    previous = app.conf.broker_transport_options
    reset_producers()
    app.conf.broker_transport_options = options
    yield tmp_path
    reset_producers()
    app.conf.broker_transport_options = previous


@pytest.fixture
def worker(private_broker):
    database = connection.settings_dict
    # The embedded server listens on a socket directory; libpq takes it as the `host` option.
    url = (
        f"postgres://{quote(database['USER'])}:{quote(database['PASSWORD'] or '')}@/"
        f"{database['NAME']}?host={quote(database['HOST'])}"
    )
    if database["PORT"]:
        url += f"&port={database['PORT']}"
    environment = {
        **os.environ,
        "DATABASE_URL": url,
        "DATA_DIR": str(private_broker),  # the worker's broker folders are ours
        "DECISIONS_BACKTEST_BATCH_SIZE": "3",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool=solo",
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
            "--loglevel=WARNING",
        ],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=(private_broker / "worker.log").open("wb"),
    )
    process.log_path = private_broker / "worker.log"  # type: ignore[attr-defined]
    yield process
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@pytest.mark.django_db(transaction=True)
def test_it_runs_a_large_backtest_in_a_worker_with_progress(worker, settings):
    settings.DECISIONS_BACKTEST_INLINE_MAX_EVENTS = 2
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
        if backtest.status in ("completed", "failed") or worker.poll() is not None:
            break
        time.sleep(0.05)

    assert backtest.status == "completed", worker.log_path.read_text()[-3000:]
    assert (backtest.total, backtest.processed) == (10, 10)
    assert backtest.results["changed"] == 4  # 200, 300, 500, 700 approve -> review
    assert seen_progress <= {0, 3, 6, 9, 10}
    assert list(Decision.objects.order_by("id").values_list("outcome", flat=True)) == stored
