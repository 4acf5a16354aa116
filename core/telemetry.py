"""Business metrics beside django-prometheus' HTTP ones, all named `decisioning_*`.

Counters and histograms are counted where the work happens (one call in each service), at once
rather than on commit: an on_commit callback per count would hide the product's own enqueued
tasks among metric callbacks, and the services count after their last check that can fail, so
a count whose transaction still rolls back is rare (a lost database connection). Gauges of
state (Celery queue depth and age, the review queue, model drift) are read at scrape time.

Several processes (gunicorn workers, prefork Celery children) each hold their own counters:
with PROMETHEUS_MULTIPROC_DIR set, prometheus_client shares them through files in that folder
and `metrics_registry()` merges them (see docs/operations.md, "Metrics").
"""

import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

# Labels take only values the product bounds (outcomes and rule keys come from rules, codes
# from the provider); never an event type, which any integrator may invent.
NO_RULE = "(none)"
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)
SCORING_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
# Celery's Redis transport keeps priorities 3, 6 and 9 of a queue in lists of their own.
REDIS_PRIORITY_SEPARATOR = "\x06\x16"
REDIS_PRIORITY_STEPS = (0, 3, 6, 9)
PUBLISHED_AT_HEADER = "published_at"

DECISIONS = Counter(
    "decisioning_decisions",
    "Decisions made, by outcome and the rule that matched ((none): the policy's default).",
    ["outcome", "rule"],
)
ENGINE_SECONDS = Histogram(
    "decisioning_engine_seconds",
    "Time the rule engine took to decide one event (CEL evaluation, no database).",
    buckets=LATENCY_BUCKETS,
)
SCORING_SECONDS = Histogram(
    "decisioning_scoring_seconds",
    "Time to validate and score one applicant with a risk model.",
    ["model"],
    buckets=SCORING_BUCKETS,
)
MESSAGES = Counter(
    "decisioning_messages",
    "SMS messages moved into each status (queued, sending, sent, delivered, failed, ...).",
    ["status"],
)
PROVIDER_ERRORS = Counter(
    "decisioning_provider_errors",
    "Errors reported by the SMS provider, by its error code (e.g. Twilio 21610).",
    ["code"],
)
WEBHOOK_REJECTIONS = Counter(
    "decisioning_webhook_rejections",
    "Webhook requests refused before processing: invalid_signature, too_large, throttled.",
    ["kind", "reason"],
)


def decision_observe(*, outcome: str, rule: str | None, engine_seconds: float) -> None:
    """One decision stored: its outcome, its matched rule and the engine's time."""

    DECISIONS.labels(outcome=outcome, rule=rule or NO_RULE).inc()
    ENGINE_SECONDS.observe(engine_seconds)


def scoring_observe(*, model: str, seconds: float) -> None:
    """One applicant validated and scored."""
    SCORING_SECONDS.labels(model=model).observe(seconds)


def messages_observe(*, status: str, count: int = 1) -> None:
    """`count` messages moved into `status`."""
    if count > 0:
        MESSAGES.labels(status=status).inc(count)


def provider_error_observe(*, code: str) -> None:
    """The SMS provider answered with an error code (a send or a delivery receipt)."""
    label = (code or "unknown")[:16]
    PROVIDER_ERRORS.labels(code=label).inc()


def webhook_rejection_observe(*, kind: str, reason: str) -> None:
    """A webhook was refused before processing."""
    WEBHOOK_REJECTIONS.labels(kind=kind, reason=reason).inc()


# --- Celery queues: depth and the age of the oldest waiting task, read from the broker --------


def celery_queues_in_use() -> list[str]:
    """Every queue the product sends to: the default, the routed ones and the heavy jobs'."""
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    heavy = getattr(settings, "CAMPAIGNS_HEAVY_QUEUE", None)
    return sorted({settings.CELERY_TASK_DEFAULT_QUEUE, *routed, *([heavy] if heavy else [])})


def stamp_published_at(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    """before_task_publish: note when a task was sent, so its age in the queue can be read."""
    if headers is not None:
        headers.setdefault(PUBLISHED_AT_HEADER, time.time())


@dataclass(frozen=True)
class QueueReading:
    queue: str
    length: int
    oldest_published_at: float | None  # None: empty, or the broker cannot tell


def _published_at(payload: bytes | str, fallback: float | None) -> float | None:
    try:
        value = json.loads(payload).get("headers", {}).get(PUBLISHED_AT_HEADER)
    except (ValueError, AttributeError):
        return fallback
    return float(value) if isinstance(value, int | float) else fallback


def _filesystem_queues(queues: list[str]) -> Iterator[QueueReading]:
    folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
    for queue in queues:
        files = sorted(folder.glob(f"*.{queue}.msg"), key=lambda path: path.stat().st_mtime)
        oldest = None
        if files:
            mtime = files[0].stat().st_mtime
            oldest = _published_at(files[0].read_bytes(), mtime)
        yield QueueReading(queue=queue, length=len(files), oldest_published_at=oldest)


def _redis_queues(queues: list[str]) -> Iterator[QueueReading]:
    import redis

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=2)
    try:
        for queue in queues:
            keys = [
                queue if step == 0 else f"{queue}{REDIS_PRIORITY_SEPARATOR}{step}"
                for step in REDIS_PRIORITY_STEPS
            ]
            length = sum(int(client.llen(key)) for key in keys)
            oldest = None
            for key in keys:  # kombu pushes on the left and pops on the right: -1 is next
                payload = client.lindex(key, -1)
                if payload is not None:
                    published = _published_at(payload, None)
                    if published is not None:
                        oldest = published if oldest is None else min(oldest, published)
            yield QueueReading(queue=queue, length=length, oldest_published_at=oldest)
    finally:
        client.close()


def _amqp_queues(queues: list[str]) -> Iterator[QueueReading]:
    """RabbitMQ tells the depth (a passive declare) but not the age: its own exporter does."""
    from kombu import Connection

    with Connection(settings.CELERY_BROKER_URL, connect_timeout=2) as connection:
        channel: Any = connection.default_channel
        for queue in queues:
            try:
                _name, length, _consumers = channel.queue_declare(queue=queue, passive=True)
            except Exception:  # the queue was never declared: nothing waits in it
                channel = connection.channel()
                length = 0
            yield QueueReading(queue=queue, length=int(length), oldest_published_at=None)


def celery_queue_readings() -> list[QueueReading]:
    """Read every product queue from the broker the product is configured with."""
    scheme = urlsplit(settings.CELERY_BROKER_URL).scheme
    queues = celery_queues_in_use()
    if scheme == "filesystem":
        return list(_filesystem_queues(queues))
    if scheme in ("redis", "rediss"):
        return list(_redis_queues(queues))
    if scheme in ("amqp", "amqps", "pyamqp"):
        return list(_amqp_queues(queues))
    return []


class CeleryQueueCollector(Collector):
    """decisioning_celery_queue_length and _oldest_age_seconds, per queue, at scrape time."""

    def describe(self) -> list[Metric]:
        return list(self._families())

    def _families(self) -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(
                "decisioning_celery_queue_length",
                "Tasks waiting in each Celery queue.",
                labels=["queue"],
            ),
            GaugeMetricFamily(
                "decisioning_celery_queue_oldest_age_seconds",
                "Age of the oldest task waiting in each Celery queue (0 when empty).",
                labels=["queue"],
            ),
        )

    def collect(self) -> Iterable[Metric]:
        length, age = self._families()
        try:
            readings = celery_queue_readings()
        except Exception:
            logger.warning("celery_queue_metrics_unavailable", exc_info=True)
            return []
        now = time.time()
        for reading in readings:
            length.add_metric([reading.queue], reading.length)
            if reading.oldest_published_at is not None or reading.length == 0:
                oldest = reading.oldest_published_at or now
                age.add_metric([reading.queue], max(0.0, now - oldest))
        return [length, age]


# --- Hooks for state other apps own: the review queue and model drift -------------------------


@dataclass(frozen=True)
class ReviewQueueReading:
    size: int
    oldest_age_seconds: float


@dataclass(frozen=True)
class DriftReading:
    model: str
    version: str
    psi_worst: float


_review_queue_reader: Callable[[], ReviewQueueReading] | None = None
_drift_reader: Callable[[], Iterable[DriftReading]] | None = None


def review_queue_reader_register(reader: Callable[[], ReviewQueueReading] | None) -> None:
    """Wire the review queue's selector (from its app's ready()); read at every scrape."""
    global _review_queue_reader
    _review_queue_reader = reader


def model_drift_reader_register(reader: Callable[[], Iterable[DriftReading]] | None) -> None:
    """Wire the drift selector (worst PSI per model version, from its app's ready())."""
    global _drift_reader
    _drift_reader = reader


class ReviewAndDriftCollector(Collector):
    """The review queue's size and oldest age, and the worst feature PSI per model version.

    Until an app registers its reader the families are exported without samples, so alert
    rules and dashboards can name them from the start.
    """

    def describe(self) -> list[Metric]:
        return list(self._families())

    def _families(self) -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(
                "decisioning_review_queue_size", "Decisions waiting for a person's review."
            ),
            GaugeMetricFamily(
                "decisioning_review_queue_oldest_age_seconds",
                "Age of the oldest decision waiting for review (0 when none waits).",
            ),
            GaugeMetricFamily(
                "decisioning_model_drift_psi_worst",
                "The largest population stability index over a model version's features.",
                labels=["model", "version"],
            ),
        )

    def collect(self) -> Iterable[Metric]:
        size, oldest, drift = self._families()
        try:
            if _review_queue_reader is not None:
                reading = _review_queue_reader()
                size.add_metric([], reading.size)
                oldest.add_metric([], reading.oldest_age_seconds)
            if _drift_reader is not None:
                for drift_reading in _drift_reader():
                    drift.add_metric(
                        [drift_reading.model, str(drift_reading.version)], drift_reading.psi_worst
                    )
        except Exception:
            logger.warning("review_or_drift_metrics_unavailable", exc_info=True)
        return [size, oldest, drift]


SCRAPE_TIME_COLLECTORS: tuple[Collector, ...] = (CeleryQueueCollector(), ReviewAndDriftCollector())


class _ProcessMetrics(Collector):
    """This process's own registry (django-prometheus' and the counters above), as one part."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


def multiprocess_mode() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def counted_metrics_registry() -> CollectorRegistry:
    """Counters and histograms: this process's, or every process's files merged."""
    if not multiprocess_mode():
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def metrics_registry() -> CollectorRegistry:
    """What the web's /metrics exports: the counted metrics and the scrape-time gauges.

    The gauges are read here only, not by the Celery workers' endpoint, so each queue's depth
    is one series however many workers are scraped.
    """
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_mode():
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ProcessMetrics())
    for collector in SCRAPE_TIME_COLLECTORS:
        registry.register(collector)
    return registry


def worker_metrics_serve(port: int) -> None:
    """A Celery worker's own /metrics on `port` (its counters: sends, receipts, backtests)."""
    start_http_server(port, registry=counted_metrics_registry())
    logger.info("worker_metrics_serving", extra={"port": port})


def worker_process_metrics_release(pid: int) -> None:
    """A prefork child or gunicorn worker exited: keep its counts, drop its live gauges."""
    if multiprocess_mode():
        multiprocess.mark_process_dead(pid)
