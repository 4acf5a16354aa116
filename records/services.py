"""Writes of prediction records: score-and-store one prediction, or a back-fill batch."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from core.errors import InvalidInput
from records.models import PredictionRecord
from risk.selectors import (
    InvalidFeatures,
    Scoring,
    model_score,
    model_score_rows,
    model_version_get,
)


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


@transaction.atomic
def record_predict(
    *,
    model_id: str,
    features: dict[str, Any],
    source: str,
    version: int | None = None,
    event_id: int | None = None,
) -> PredictionRecord:
    """Validate and score features with a model, and store the prediction as a record."""
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
    record.save()
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
    outcome = BackfillOutcome()
    model_version = model_version_get(key=model_id, version=version)
    existing = set(
        PredictionRecord.objects.filter(
            model_id=model_id, external_id__in=[row.external_id for row in rows]
        ).values_list("external_id", flat=True)
    )
    fresh: list[BackfillRow] = []
    seen: set[str] = set()
    for row in rows:
        if row.external_id in existing or row.external_id in seen:
            outcome.skipped += 1
        else:
            seen.add(row.external_id)
            fresh.append(row)
    results = model_score_rows(
        model_version=model_version, rows=[row.features for row in fresh], coerce_strings=True
    )
    records = []
    for row, result in zip(fresh, results, strict=True):
        if isinstance(result, InvalidFeatures):
            outcome.rejected.append((row.line, result.errors))
        else:
            records.append(
                _record_from(
                    result, source=PredictionRecord.Source.BACKFILL, external_id=row.external_id
                )
            )
    # ON CONFLICT DO NOTHING: a concurrent run importing the same rows cannot fail this batch.
    created = PredictionRecord.objects.bulk_create(records, ignore_conflicts=True)
    outcome.inserted = len(created)
    return outcome
