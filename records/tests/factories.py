"""Records for tests: real predictions of the shipped model, with chosen times and sources."""

from datetime import datetime
from typing import Any

from records.models import PredictionRecord
from records.services import record_predict
from risk.tests.factories import applicant


def record_create(
    *,
    index: int = 0,
    source: str = PredictionRecord.Source.API,
    created_at: datetime | None = None,
    event_id: int | None = None,
    **overrides: Any,
) -> PredictionRecord:
    record = record_predict(
        model_id="credit-default",
        features=applicant(index, **overrides),
        source=source,
        event_id=event_id,
    )
    if created_at is not None:
        PredictionRecord.objects.filter(pk=record.pk).update(created_at=created_at)
        record.refresh_from_db(fields=["created_at"])
    return record


def records_copied(template: PredictionRecord, *, count: int, **fields: Any) -> None:
    """`count` copies of a scored record in one insert, with scores spread over [0, 1):
    enough rows for a query count or a histogram to matter, without scoring each one."""
    copies = []
    for number in range(count):
        copy = PredictionRecord(
            model_id=template.model_id,
            model_version=template.model_version,
            features=template.features,
            embedding=template.embedding,
            risk_score=(number % 100) / 100,
            risk_label=template.risk_label,
            drivers=template.drivers,
            base_logit=template.base_logit,
            source=template.source,
        )
        for name, value in fields.items():
            setattr(copy, name, value(number) if callable(value) else value)
        copies.append(copy)
    PredictionRecord.objects.bulk_create(copies)
