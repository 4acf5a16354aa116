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
