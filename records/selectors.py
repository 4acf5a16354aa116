"""Reads of prediction records: lists, one record, nearest neighbours, the dashboard summary,
and the drift measurements."""

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Func, IntegerField, Max, QuerySet, Value
from django.db.models.functions import Least
from pgvector import HalfVector
from pgvector.django import CosineDistance

from core import telemetry
from core.errors import InvalidInput
from records.exceptions import RecordNotFound
from records.models import EMBEDDING_HALF, DriftMeasurement, PredictionRecord
from risk.selectors import (
    SCORE,
    drift_level,
    german_credit_applicants,
    model_feature_reasons,
    model_has_production_version,
    model_risk_labels,
    model_score,
)

LIST_FIELDS = (
    "id",
    "created_at",
    "model_id",
    "model_version",
    "risk_score",
    "risk_label",
    "source",
    "event_id",
)


def record_list() -> QuerySet[PredictionRecord]:
    """Records newest first, without the heavy columns (embedding, features, drivers)."""
    return PredictionRecord.objects.only(*LIST_FIELDS).order_by("-created_at", "-id")


def record_risk_labels() -> list[str]:
    """The labels a record can carry: those of the models' label thresholds, in their order."""
    return model_risk_labels()


def record_get(*, record_id: int) -> PredictionRecord:
    record = PredictionRecord.objects.filter(pk=record_id).first()
    if record is None:
        raise RecordNotFound(f"No record {record_id}.")
    return record


@dataclass(frozen=True)
class Neighbour:
    record: PredictionRecord
    distance: float


def _k_checked(k: Any) -> int:
    limit = settings.RECORDS_NEAREST_MAX_K
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= limit:
        raise InvalidInput(
            f"k must be an integer from 1 to {limit}.", errors={"k": [f"1 to {limit}"]}
        )
    return k


def record_nearest(
    *,
    model_id: str,
    embedding: Any,
    k: int,
    exclude_id: int | None = None,
    exact: bool = False,
    before_id: int | None = None,
    with_event: bool = False,
) -> list[Neighbour]:
    """The k records of a model closest to `embedding` by cosine distance.

    The HNSW index (on the embedding in half precision) is searched with pgvector's iterative
    scan (`relaxed_order`), so the model filter cannot starve the result below k rows; relaxed
    order means the rows come back nearly sorted, hence the final sort by the full-precision
    distance. `exact=True` disables index scans: a sequential scan by the full-precision
    distance, the reference the approximate answer is measured against.
    """
    k = _k_checked(k)
    vector = np.asarray(embedding, dtype=np.float32)
    # The index holds the embeddings in half precision, so the approximate search orders by
    # that expression; the distance returned is the full-precision one, as the exact search's.
    queryset = (
        PredictionRecord.objects.filter(model_id=model_id)
        .annotate(distance=CosineDistance("embedding", vector))
        .only(*LIST_FIELDS)
        .order_by(
            "distance" if exact else CosineDistance(EMBEDDING_HALF, HalfVector(vector.tolist()))
        )
    )
    if exclude_id is not None:
        queryset = queryset.exclude(pk=exclude_id)
    if before_id is not None:
        queryset = queryset.filter(pk__lt=before_id)
    if with_event:
        queryset = queryset.filter(event_id__isnull=False)
    with transaction.atomic():
        # The settings are SET LOCAL inside a savepoint that is rolled back after the read, so
        # they never leak into the caller's transaction (e.g. a test's, or the exact variant's).
        savepoint = transaction.savepoint_create()
        try:
            with connection.cursor() as cursor:
                if exact:
                    cursor.execute("SET LOCAL enable_indexscan = off")
                else:
                    # One round trip for both settings: this runs inside decisions too.
                    cursor.execute(
                        "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true), "
                        "set_config('hnsw.ef_search', %s, true)",
                        [str(max(settings.RECORDS_HNSW_EF_SEARCH, k))],
                    )
            rows = list(queryset[:k])
        finally:
            transaction.savepoint_rollback(savepoint)
    rows.sort(key=lambda record: (record.distance, record.pk))
    return [Neighbour(record=row, distance=float(row.distance)) for row in rows]


def record_nearest_to_record(*, record_id: int, k: int) -> tuple[PredictionRecord, list[Neighbour]]:
    """A stored record and the k records of its model most similar to it (itself excluded)."""
    record = (
        PredictionRecord.objects.filter(pk=record_id).only("id", "model_id", "embedding").first()
    )
    if record is None:
        raise RecordNotFound(f"No record {record_id}.")
    neighbours = record_nearest(
        model_id=record.model_id, embedding=record.embedding, k=k, exclude_id=record.pk
    )
    return record, neighbours


def record_earlier_cases(*, record_id: int, k: int) -> list[Neighbour]:
    """The k records of the same model most similar to record `record_id` among those stored
    before it that belong to a decided event: the similar earlier cases of a decision."""
    record = (
        PredictionRecord.objects.filter(pk=record_id).only("id", "model_id", "embedding").first()
    )
    if record is None:
        raise RecordNotFound(f"No record {record_id}.")
    return record_nearest(
        model_id=record.model_id,
        embedding=record.embedding,
        k=k,
        before_id=record.pk,
        with_event=True,
    )


@functools.lru_cache(maxsize=64)
def _feature_reasons(model_id: str, model_version: int) -> dict[str, str]:
    # A model version's feature schema never changes, so its texts are read once per process.
    return model_feature_reasons(key=model_id, version=model_version)


def record_drivers_explained(
    record: PredictionRecord,
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """A record's drivers and {feature: reason text} of the model version that scored it."""
    return list(record.drivers), _feature_reasons(record.model_id, record.model_version)


def record_drivers_with_texts(*, record_id: int) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """record_drivers_explained of a stored record, read by id."""
    record = (
        PredictionRecord.objects.filter(pk=record_id)
        .only("model_id", "model_version", "drivers")
        .first()
    )
    if record is None:
        raise RecordNotFound(f"No record {record_id}.")
    return record_drivers_explained(record)


def record_nearest_to_features(
    *, model_id: str, features: Any, k: int, version: int | None = None
) -> list[Neighbour]:
    """The k records most similar to features that are scored but not stored."""
    _k_checked(k)
    scoring = model_score(model_key=model_id, features=features, version=version)
    return record_nearest(model_id=model_id, embedding=scoring.embedding, k=k)


SCORE_BINS = 10


def _score_bin(bins: int) -> Least:
    """The 1-based bin of a record's score among `bins` equal bins of [0, 1] (PostgreSQL's
    width_bucket; a score of exactly 1 counts in the last bin)."""
    return Least(
        Func(
            F("risk_score"),
            Value(0.0),
            Value(1.0),
            Value(bins),
            function="width_bucket",
            output_field=IntegerField(),
        ),
        Value(bins),
        output_field=IntegerField(),
    )


def record_score_histogram(
    *, records: QuerySet[PredictionRecord], bins: int = SCORE_BINS
) -> list[int]:
    """How many of `records` score in each of `bins` equal bins of [0, 1]: one grouped query."""
    counts = [0] * bins
    rows = (
        records.order_by()
        .annotate(bin=_score_bin(bins))
        .values_list("bin")
        # count(*), not count(id): the score index alone can answer (an index-only scan)
        .annotate(count=Count("*"))
        .values_list("bin", "count")
    )
    for number, count in rows:
        counts[max(int(number), 1) - 1] += count
    return counts


@dataclass(frozen=True)
class RecordsSummary:
    total: int
    by_label: list[dict[str, Any]]
    histogram: list[int]


def records_summary(*, since: datetime | None = None) -> RecordsSummary:
    """Counts per label and the score distribution of the records made since `since`, from
    one grouped query (one pass over the rows, however many)."""
    records = PredictionRecord.objects.all()
    if since is not None:
        records = records.filter(created_at__gte=since)
    rows = (
        records.order_by()
        .annotate(bin=_score_bin(SCORE_BINS))
        .values_list("risk_label", "bin")
        .annotate(count=Count("*"))
        .values_list("risk_label", "bin", "count")
    )
    labels: dict[str, int] = {}
    histogram = [0] * SCORE_BINS
    for label, number, count in rows:
        labels[label] = labels.get(label, 0) + count
        histogram[max(int(number), 1) - 1] += count
    total = sum(labels.values())
    by_label = [
        {"risk_label": label, "count": count, "percent": round(100 * count / total)}
        for label, count in sorted(labels.items())
    ]
    return RecordsSummary(total=total, by_label=by_label, histogram=histogram)


def scoring_available(*, model_id: str) -> bool:
    """True when `model_id` has a production version that predictions can use."""
    return model_has_production_version(key=model_id)


def demo_applicants() -> list[dict[str, Any]]:
    """Applicants' features from the shipped German Credit data, for demo events."""
    return [features for _line, features in german_credit_applicants()]


@dataclass(frozen=True)
class DriftSeries:
    """One feature's (or the score's) PSI over the last windows of one model version."""

    feature: str
    points: list[tuple[datetime, float]]  # oldest first

    @property
    def latest(self) -> float:
        return self.points[-1][1]

    @property
    def level(self) -> str:
        return drift_level(self.latest)

    @property
    def is_score(self) -> bool:
        return self.feature == SCORE


@dataclass(frozen=True)
class VersionDrift:
    model_id: str
    model_version: int
    sample_size: int
    window_end: datetime
    series: list[DriftSeries]  # the score first, then the worst feature first


def _measured_versions() -> list[Any]:
    return list(
        DriftMeasurement.objects.values("model_id", "model_version")
        .annotate(last=Max("window_end"))
        .order_by("model_id", "-model_version")
    )


def drift_readings() -> list[telemetry.DriftReading]:
    """The worst PSI of each model version's latest window, as the drift gauge reads it."""
    return [
        telemetry.DriftReading(model=model, version=str(version), psi_worst=worst)
        for (model, version), worst in drift_worst().items()
        if worst is not None
    ]


def drift_overview(*, windows: int = 30) -> list[VersionDrift]:
    """Every measured model version's last `windows` measurements, per feature."""
    overview = []
    for version in _measured_versions():
        rows = DriftMeasurement.objects.filter(
            model_id=version["model_id"], model_version=version["model_version"]
        )
        ends = list(
            rows.values_list("window_end", flat=True).distinct().order_by("-window_end")[:windows]
        )
        by_feature: dict[str, list[tuple[datetime, float]]] = {}
        latest_size = 0
        for row in rows.filter(window_end__in=ends).order_by("window_end", "feature"):
            by_feature.setdefault(row.feature, []).append((row.window_end, row.psi))
            if row.window_end == version["last"]:
                latest_size = row.sample_size
        series = [DriftSeries(feature, points) for feature, points in by_feature.items()]
        series.sort(key=lambda one: (not one.is_score, -one.latest, one.feature))
        overview.append(
            VersionDrift(
                version["model_id"], version["model_version"], latest_size, version["last"], series
            )
        )
    return overview


def drift_worst() -> dict[tuple[str, int], float]:
    """The worst PSI (features and score) of each model version's latest window, for a gauge."""
    worst = {}
    for version in _measured_versions():
        value = DriftMeasurement.objects.filter(
            model_id=version["model_id"],
            model_version=version["model_version"],
            window_end=version["last"],
        ).aggregate(worst=Max("psi"))["worst"]
        worst[(version["model_id"], version["model_version"])] = value
    return worst
