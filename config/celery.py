"""The Celery app: broker and schedule come from Django settings (CELERY_*).

Each worker binds the request id a task was sent with (django-structlog's boot step), serves
its own metrics when CELERY_WORKER_METRICS_PORT is set, and traces when OTLP is configured.
"""

import os
from typing import Any

from celery import Celery, signals
from django.conf import settings
from django_structlog.celery.steps import DjangoStructLogInitStep

from core.telemetry import worker_metrics_serve, worker_process_metrics_release
from core.tracing import tracing_configure

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("decisioning")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Without it the worker never reads the request id django-structlog puts in each task's headers.
app.steps["worker"].add(DjangoStructLogInitStep)


@signals.worker_init.connect
def worker_metrics_and_tracing_start(sender: Any = None, **kwargs: Any) -> None:
    if settings.CELERY_WORKER_METRICS_PORT:
        worker_metrics_serve(settings.CELERY_WORKER_METRICS_PORT)
    # A prefork pool's children start their own (below); threads and solo run in this process.
    if "prefork" not in str(getattr(sender, "pool_cls", "")):
        tracing_configure()


@signals.worker_process_init.connect
def worker_process_tracing_start(**kwargs: Any) -> None:
    tracing_configure()


@signals.worker_process_shutdown.connect
def exited_process_metrics_release(pid: int | None = None, **kwargs: Any) -> None:
    worker_process_metrics_release(pid or os.getpid())
