"""The records list as CSV: the filtered set, streamed in chunks, safe for spreadsheets."""

from collections.abc import Iterator

from django.db.models import QuerySet

from core.spreadsheets import csv_lines
from records.models import PredictionRecord

# The list's columns: features and drivers stay out (personal data, shown masked in pages).
EXPORT_COLUMNS = [
    "id",
    "created_at",
    "model_id",
    "model_version",
    "risk_score",
    "risk_label",
    "source",
    "event_id",
    "external_id",
]
CHUNK_SIZE = 2000


def records_csv(records: QuerySet[PredictionRecord]) -> Iterator[str]:
    """CSV lines of `records` read with a server-side cursor, so 100,000 rows stream in
    constant memory."""
    rows = records.values_list(*EXPORT_COLUMNS).iterator(chunk_size=CHUNK_SIZE)
    return csv_lines(
        EXPORT_COLUMNS,
        ([*row[:1], row[1].isoformat(), *row[2:]] for row in rows),
    )
