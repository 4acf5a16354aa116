"""A REAL Celery worker process for integration tests, against the test database.

    @pytest.mark.django_db(transaction=True)
    def test_it_sends(celery_worker):
        celery_worker.start(env={"SMS_PROVIDER": "twilio", ...})
        ...
        celery_worker.kill()      # SIGKILL, the whole process group, mid-task
        celery_worker.start()     # the same broker and database

The worker runs with kombu's filesystem transport made atomic (see atomic_filesystem_broker).
Each test gets its own broker: a `filesystem://` folder under tmp_path (or, when REDIS_URL is
set, Redis with a queue of its own). The test process's Celery app is pointed at the same broker
(and its producer pool reset), so `task.delay()` from a test or a service reaches the worker.
Use the `celery_worker` fixture (import it in a conftest or the test module).
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.atomic_filesystem_broker import patch as patch_filesystem_broker

ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    """The test database as a URL a subprocess can use (the embedded server's Unix socket)."""
    from django.db import connection

    config = connection.settings_dict
    host = config.get("HOST") or ""
    user = config.get("USER") or "postgres"
    password = f":{config['PASSWORD']}" if config.get("PASSWORD") else ""
    if host.startswith("/"):
        return f"postgres://{user}{password}@/{config['NAME']}?host={host}"
    port = f":{config['PORT']}" if config.get("PORT") else ""
    return f"postgres://{user}{password}@{host}{port}/{config['NAME']}"


class CeleryWorker:
    """One `celery -A config worker` subprocess that can be killed and started again."""

    def __init__(self, tmp_path: Path, *, concurrency: int = 2):
        self.tmp_path = tmp_path
        self.concurrency = concurrency
        self.data_dir = tmp_path / "worker-data"
        self.queue = f"test-{uuid.uuid4().hex[:8]}"
        self.log_path = tmp_path / "celery-worker.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.env: dict[str, str] = {}
        self.redis_url = os.environ.get("REDIS_URL", "")

    # --- the broker, shared with the test process --------------------------------------------
    def broker_settings(self) -> dict[str, Any]:
        if self.redis_url:
            return {"broker_url": self.redis_url, "broker_transport_options": {}}
        queue = self.data_dir / "broker" / "queue"
        control = self.data_dir / "broker" / "control"
        queue.mkdir(parents=True, exist_ok=True)
        control.mkdir(parents=True, exist_ok=True)
        return {
            "broker_url": "filesystem://",
            "broker_transport_options": {
                "data_folder_in": str(queue),
                "data_folder_out": str(queue),
                "control_folder": str(control),
                "store_processed": False,
                "polling_interval": 0.05,
            },
        }

    def connect_test_process(self) -> None:
        """Make the test process publish to this worker's broker."""
        from config.celery import app

        patch_filesystem_broker()
        broker = self.broker_settings()
        app.conf.broker_url = broker["broker_url"]
        app.conf.broker_transport_options = broker["broker_transport_options"]
        app.conf.task_default_queue = self.queue
        app.conf.task_always_eager = False
        app._pool = None
        app.amqp._producer_pool = None

    # --- the process ---------------------------------------------------------------------------
    def start(self, env: dict[str, str] | None = None, timeout: float = 60) -> "CeleryWorker":
        if env is not None:
            self.env = env
        assert self.process is None, "already running"
        broker = self.broker_settings()
        environment = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": database_url(),
            "DATA_DIR": str(self.data_dir),
            "CELERY_BROKER_URL": broker["broker_url"],
            "CELERY_TASK_DEFAULT_QUEUE": self.queue,
            "CONN_MAX_AGE": "0",
            "LOG_FORMAT": "console",
            "PYTHONUNBUFFERED": "1",
            **self.env,
        }
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.atomic_filesystem_broker",
                "-A",
                "config",
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                str(self.concurrency),
                "--queues",
                self.queue,
                "--hostname",
                f"{self.queue}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: kill() reaches the pool children
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log_path.read_bytes()[offset:].decode(errors="replace")
            if " ready." in text:
                return self
            if self.process.poll() is not None:
                raise RuntimeError(f"The Celery worker exited:\n{text[-4000:]}")
            time.sleep(0.1)
        raise RuntimeError(f"The Celery worker was not ready in {timeout}s:\n{self.log()[-4000:]}")

    def kill(self) -> None:
        """SIGKILL the worker and its pool children at once: no cleanup, no acks."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            self.kill()
        self.process = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.fixture
def celery_worker(transactional_db: Any, tmp_path: Path) -> Iterator[CeleryWorker]:
    """A real worker (not yet started: call .start(env=...)); stopped after the test."""
    from config.celery import app

    saved = {
        "broker_url": app.conf.broker_url,
        "broker_transport_options": app.conf.broker_transport_options,
        "task_default_queue": app.conf.task_default_queue,
    }
    worker = CeleryWorker(tmp_path)
    worker.connect_test_process()
    try:
        yield worker
    finally:
        worker.kill()  # the test is over: no need to wait for a warm shutdown
        for key, value in saved.items():
            setattr(app.conf, key, value)
        app._pool = None
        app.amqp._producer_pool = None
