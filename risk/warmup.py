"""Start-up warm-up: a web or worker process loads the production models before anyone asks.

Loading an artifact imports scikit-learn and skops and rebuilds the pipeline (about two seconds
on a cold process). Done in a daemon thread right after the process forks, so neither the first
page nor the first prediction pays for it: a prediction that arrives mid-load waits for that
load (the cache builds one version at a time) instead of starting another.
"""

import threading
from typing import Any

import structlog
from django.db import connections

from risk.selectors import production_models_warm

logger = structlog.get_logger(__name__)


def _warm() -> None:
    try:
        loaded = production_models_warm()
        logger.info("risk_models_warmed", models=[f"{m.key}@{m.version}" for m in loaded])
    except Exception:  # a warm-up failure must never stop a process: scoring loads on demand
        logger.exception("risk_models_warm_failed")
    finally:
        connections.close_all()  # this thread's own connection, never reused


def production_models_warm_in_background() -> threading.Thread:
    """Start the warm-up in a daemon thread and return it (callers need not wait)."""
    thread = threading.Thread(target=_warm, name="risk-models-warm-up", daemon=True)
    thread.start()
    return thread


def warm_after_fork(**_: Any) -> None:
    """Celery's worker_process_init: a prefork child (or the solo pool) is ready to work."""
    production_models_warm_in_background()


def warm_in_threaded_worker(sender: Any = None, **_: Any) -> None:
    """Celery's worker_ready: pools that run tasks in the worker process itself (threads)."""
    pool_module = type(getattr(sender, "pool", None)).__module__
    if pool_module.endswith(".thread"):
        production_models_warm_in_background()
