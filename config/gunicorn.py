"""gunicorn hooks for the image (`--config python:config.gunicorn`).

With PROMETHEUS_MULTIPROC_DIR set (the image sets it; compose mounts a tmpfs there, so each
start begins empty), every worker process writes its counters into that folder and /metrics
merges them; when a worker exits its live gauges are dropped (its counts stay).
"""

from typing import Any

from core.telemetry import worker_process_metrics_release


def child_exit(server: Any, worker: Any) -> None:
    worker_process_metrics_release(worker.pid)
