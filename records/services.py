"""Writes of prediction records: score-and-store one prediction, a back-fill batch, and the
daily drift measurement of each production model version against its training reference."""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from pgvector.psycopg import register_vector
from psycopg import sql
from psycopg.types.json import Jsonb

from core.errors import InvalidInput
from core.rows import row_insert
from records.batch_scoring import PreparedRow, rows_prepare
from records.models import DriftMeasurement, PredictionRecord
from risk.selectors import (
    InvalidFeatures,
    Scoring,
    model_score,
    model_version_get,
    model_version_loaded,
    model_versions_in_production,
    window_stability,
)
from risk.services import model_version_reference_ensure


def _record_from(
    scoring: Scoring, *, source: str, event_id: int | None = None, external_id: str | None = None
) -> PredictionRecord:
    return PredictionRecord(
        model_id=scoring.model_key,
        model_version=scoring.model_version,
        features=scoring.features,
        embedding=scoring.embedding,
        risk_score=scoring.score,
        risk_label=scoring.label,
        drivers=scoring.drivers_as_json(),
        base_logit=scoring.base_logit,
        source=source,
        event_id=event_id,
        external_id=external_id,
    )


def record_predict(
    *,
    model_id: str,
    features: dict[str, Any],
    source: str,
    version: int | None = None,
    event_id: int | None = None,
) -> PredictionRecord:
    """Validate and score features with a model, and store the prediction as a record.

    One INSERT, atomic by itself: no transaction of its own (inside an event's transaction, a
    savepoint cost two round trips per scored event)."""
    if source not in PredictionRecord.Source.values:
        raise InvalidInput(
            f"Unknown source {source!r}.",
            errors={"source": [f"one of {', '.join(PredictionRecord.Source.values)}"]},
        )
    # Forms send text; API callers and other services must send JSON types.
    scoring = model_score(
        model_key=model_id,
        features=features,
        version=version,
        coerce_strings=source == PredictionRecord.Source.FORM,
    )
    record = _record_from(scoring, source=source, event_id=event_id)
    # The database enforces the check constraints; validating them here would cost 2 queries.
    record.full_clean(exclude=["embedding"], validate_constraints=False)
    # Every prediction and scored event inserts one: a statement built once, not save()'s SQL
    # compiled per call (half of this function's Python time, bench/http_load.py's predict).
    row_insert(record)
    return record


@dataclass(frozen=True)
class BackfillRow:
    line: int
    external_id: str
    features: dict[str, Any]


@dataclass
class BackfillOutcome:
    inserted: int = 0
    skipped: int = 0
    rejected: list[tuple[int, dict[str, list[str]]]] = field(default_factory=list)


@transaction.atomic
def records_backfill_batch(
    *, model_id: str, rows: Sequence[BackfillRow], version: int | None = None
) -> BackfillOutcome:
    """Score and insert one batch; rows already imported (same external id) are skipped."""
    prepared = backfill_scorer(model_id=model_id, version=version)([row.features for row in rows])
    return records_backfill_prepared(model_id=model_id, rows=rows, prepared=prepared)


@transaction.atomic
def records_backfill_prepared(
    *, model_id: str, rows: Sequence[BackfillRow], prepared: Sequence[PreparedRow | InvalidFeatures]
) -> BackfillOutcome:
    """Insert a batch scored by `backfill_rows_prepare` (perhaps in another thread, while the
    previous batch was written): skipped (same external id), rejected, or copied in."""
    outcome = BackfillOutcome()
    existing = set(
        PredictionRecord.objects.filter(
            model_id=model_id, external_id__in=[row.external_id for row in rows]
        ).values_list("external_id", flat=True)
    )
    fresh: list[tuple[str, PreparedRow]] = []
    seen: set[str] = set()
    for row, result in zip(rows, prepared, strict=True):
        if row.external_id in existing or row.external_id in seen:
            outcome.skipped += 1
            continue
        seen.add(row.external_id)
        if isinstance(result, InvalidFeatures):
            outcome.rejected.append((row.line, result.errors))
        else:
            fresh.append((row.external_id, result))
    outcome.inserted = _prepared_copy(fresh)
    # A row that another run (or another writer of this one) committed between the SELECT above
    # and the INSERT was skipped by ON CONFLICT: it is stored once, so count it as skipped.
    outcome.skipped += len(fresh) - outcome.inserted
    return outcome


@dataclass(frozen=True)
class DriftOutcome:
    """What one version's measurement did: its rows, or why there are none."""

    model_id: str
    model_version: int
    sample_size: int
    measurements: list[DriftMeasurement]
    skipped: str = ""


def drift_measure(
    *, at: datetime | None = None, window_days: int | None = None
) -> list[DriftOutcome]:
    """Measure every production version's drift over the window ending `at` (default: now) and
    store one row per feature and one for the score; a version without a training reference,
    or with fewer than RECORDS_DRIFT_MIN_SAMPLE records in the window, is skipped (and said so).
    """
    window_end = at or timezone.now()
    window_start = window_end - timedelta(days=window_days or settings.RECORDS_DRIFT_WINDOW_DAYS)
    return [
        _version_drift_measure(model_version, window_start=window_start, window_end=window_end)
        for model_version in model_versions_in_production()
    ]


def _version_drift_measure(
    model_version: Any, *, window_start: datetime, window_end: datetime
) -> DriftOutcome:
    key, number = model_version.model.key, model_version.version
    reference = model_version_reference_ensure(model_version=model_version)
    if not reference:
        return DriftOutcome(key, number, 0, [], skipped="no training reference")
    window = (
        PredictionRecord.objects.filter(
            model_id=key,
            model_version=number,
            created_at__gte=window_start,
            created_at__lt=window_end,
        )
        .exclude(source=PredictionRecord.Source.BACKFILL)  # imported history, not live traffic
        .values_list("features", "risk_score")
    )
    results, size = window_stability(reference=reference, window=window.iterator(chunk_size=2000))
    if size < settings.RECORDS_DRIFT_MIN_SAMPLE:
        return DriftOutcome(key, number, size, [], skipped=f"{size} records in the window")
    measurements = DriftMeasurement.objects.bulk_create(
        DriftMeasurement(
            model_id=key,
            model_version=number,
            feature=feature,
            psi=value,
            sample_size=size,
            window_start=window_start,
            window_end=window_end,
        )
        for feature, value in results.items()
        if value is not None
    )
    return DriftOutcome(key, number, size, measurements)


BACKFILL_COPY_COLUMNS = (
    ("created_at", "timestamptz"),
    ("model_id", "varchar"),
    ("model_version", "int4"),
    ("features", "jsonb"),
    ("embedding", "vector"),
    ("risk_score", "float8"),
    ("risk_label", "varchar"),
    ("drivers", "jsonb"),
    ("base_logit", "float8"),
    ("source", "varchar"),
    ("event_id", "int8"),
    ("external_id", "varchar"),
)


def backfill_copy_values(row: PreparedRow, *, now: datetime, external_id: str) -> tuple:
    """One back-filled record as COPY (binary) takes it, in BACKFILL_COPY_COLUMNS' order."""
    return (
        now,
        row.model_key,
        row.model_version,
        Jsonb(row.features),
        row.embedding,
        row.score,
        row.label,
        Jsonb(row.drivers),
        row.base_logit,
        PredictionRecord.Source.BACKFILL.value,
        None,
        external_id,
    )


def backfill_scorer(
    *, model_id: str, version: int | None = None
) -> Callable[[Sequence[Mapping[str, Any]]], list[PreparedRow | InvalidFeatures]]:
    """Validation and scoring of CSV rows (text) with a version, loaded here: what it returns
    reads no database, so a thread can prepare the next batch while this one is written."""
    loaded = model_version_loaded(model_version=model_version_get(key=model_id, version=version))
    return partial(rows_prepare, loaded)


def _prepared_copy(rows: Sequence[tuple[str, PreparedRow]]) -> int:
    """Insert back-filled records with COPY (binary) through a staging table; returns how many
    were new.

    COPY skips the per-row parse/plan/execute of INSERT; it cannot skip conflicts, so it fills a
    temporary table and one INSERT ... SELECT ... ON CONFLICT DO NOTHING moves the rows: a
    concurrent run importing the same rows cannot fail this batch. The rows go in by external
    id (their ids still follow the file): two transactions inserting the same ids (two writers,
    or two runs of files in different orders) then wait for each other in one direction, never
    in a cycle that PostgreSQL breaks by failing one of them as a deadlock (as it does in
    records/tests/test_backfill_writers.py without the ORDER BY). Measured in
    bench/backfill_bench.py.
    """
    if not rows:
        return 0
    columns = sql.SQL(", ").join(sql.Identifier(name) for name, _type in BACKFILL_COPY_COLUMNS)
    now = timezone.now()
    raw = connection.connection
    register_vector(raw)
    with raw.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_class WHERE relname = 'records_copy_staging' "
            "AND relpersistence = 't' AND pg_table_is_visible(oid)"
        )
        if cursor.fetchone() is None:
            cursor.execute(
                sql.SQL(
                    "CREATE TEMPORARY TABLE records_copy_staging ON COMMIT DELETE ROWS "
                    "AS SELECT {} FROM records_predictionrecord WITH NO DATA"
                ).format(columns)
            )
        with cursor.copy(
            sql.SQL("COPY records_copy_staging ({}) FROM STDIN (FORMAT BINARY)").format(columns)
        ) as copy:
            copy.set_types([type_name for _name, type_name in BACKFILL_COPY_COLUMNS])
            for external_id, row in rows:
                copy.write_row(backfill_copy_values(row, now=now, external_id=external_id))
        # Ids are drawn in file order (the inner scan), the rows inserted in external id order.
        cursor.execute(
            sql.SQL(
                "INSERT INTO records_predictionrecord (id, {}) "
                "SELECT id, {} FROM (SELECT nextval(pg_get_serial_sequence("
                "'records_predictionrecord', 'id')) AS id, * FROM records_copy_staging) "
                "AS numbered ORDER BY external_id ON CONFLICT DO NOTHING"
            ).format(columns, columns)
        )
        inserted = cursor.rowcount
        cursor.execute("TRUNCATE records_copy_staging")
    return inserted
