"""Streaming a historical CSV into records: batches, fingerprints, a rejected-rows report.

Rows are read one at a time and handed over in batches of `batch_size`, so memory stays flat for
any file size. Each batch commits on its own: an interrupted run keeps what it committed, and a
re-run skips those rows by their external id (the CSV's `external_id` column when present, else
a SHA-256 fingerprint of the row's content), so it resumes where it stopped.
"""

import csv
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from core.errors import InvalidInput
from records.services import BackfillRow, records_backfill_batch

EXTERNAL_ID_COLUMN = "external_id"
MAX_COLUMNS = 256


@dataclass
class BackfillReport:
    inserted: int = 0
    skipped: int = 0
    rejected: int = 0
    rows: int = 0
    report_path: Path | None = None
    first_rejections: list[str] = field(default_factory=list)


def row_fingerprint(model_id: str, row: dict[str, str]) -> str:
    canonical = json.dumps(row, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{model_id}\n{canonical}".encode()).hexdigest()


def csv_header_check(path: Path, schema: list[dict[str, Any]]) -> None:
    """Refuse a file whose header cannot fit the model, before any row is read."""
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        header = [name.strip() for name in next(csv.reader(handle), [])]
    if not header:
        raise InvalidInput("The CSV file is empty.", errors={"header": ["missing"]})
    if len(header) > MAX_COLUMNS:
        raise InvalidInput(f"The CSV has more than {MAX_COLUMNS} columns.")
    known = {feature["name"] for feature in schema}
    errors: dict[str, list[str]] = {}
    unknown = [name for name in header if name not in known and name != EXTERNAL_ID_COLUMN]
    missing = [f["name"] for f in schema if f.get("required", True) and f["name"] not in header]
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if unknown:
        errors["unknown columns"] = unknown
    if missing:
        errors["missing columns"] = missing
    if duplicated:
        errors["duplicated columns"] = duplicated
    if errors:
        raise InvalidInput("The CSV header does not match the model's features.", errors=errors)


def csv_row_count(path: Path) -> int:
    """Data rows in the file (one streaming pass), for the progress bar's total."""
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        return max(0, sum(1 for _ in csv.reader(handle)) - 1)


def _rows(
    handle: IO[str], model_id: str, max_row_bytes: int, reject: Callable[[int, str, str], None]
) -> Iterator[BackfillRow]:
    reader = csv.reader(handle)
    header = next(reader, None)
    if not header:
        return
    header = [name.strip() for name in header]
    has_id = EXTERNAL_ID_COLUMN in header
    for values in reader:
        line = reader.line_num
        if not any(value.strip() for value in values):
            continue
        if len(values) != len(header):
            reject(line, "__row__", f"has {len(values)} columns, the header has {len(header)}")
            continue
        if sum(len(value) for value in values) > max_row_bytes:
            reject(line, "__row__", f"longer than {max_row_bytes} bytes")
            continue
        row = dict(zip(header, values, strict=True))
        if has_id:
            external_id = row.pop(EXTERNAL_ID_COLUMN).strip()
            if not external_id or len(external_id) > 64:
                reject(line, EXTERNAL_ID_COLUMN, "must be 1 to 64 characters")
                continue
        else:
            external_id = row_fingerprint(model_id, row)
        yield BackfillRow(line=line, external_id=external_id, features=dict(row))


def backfill_csv(
    *,
    path: Path,
    model_id: str,
    report_path: Path,
    batch_size: int,
    max_row_bytes: int,
    version: int | None = None,
    progress: Callable[[int], None] = lambda _count: None,
) -> BackfillReport:
    """Import a CSV into records; rejected rows go to `report_path` (line, field, reason)."""
    report = BackfillReport()
    with (
        path.open(newline="", encoding="utf-8", errors="replace") as handle,
        report_path.open("w", newline="", encoding="utf-8") as report_file,
    ):
        writer = csv.writer(report_file)
        writer.writerow(["line", "field", "reason"])

        def reject(line: int, field_name: str, reason: str) -> None:
            writer.writerow([line, field_name, reason])
            if len(report.first_rejections) < 5:
                report.first_rejections.append(f"line {line}: {field_name}: {reason}")

        def rejected_row(line: int, field_name: str, reason: str) -> None:
            report.rejected += 1
            report.rows += 1
            reject(line, field_name, reason)
            progress(1)

        csv.field_size_limit(max_row_bytes)
        batch: list[BackfillRow] = []

        def flush() -> None:
            outcome = records_backfill_batch(model_id=model_id, rows=batch, version=version)
            report.inserted += outcome.inserted
            report.skipped += outcome.skipped
            report.rejected += len(outcome.rejected)
            report.rows += len(batch)
            for line, errors in outcome.rejected:
                for field_name, messages in errors.items():
                    reject(line, field_name.removeprefix("features."), "; ".join(messages))
            progress(len(batch))
            batch.clear()

        try:
            for row in _rows(handle, model_id, max_row_bytes, rejected_row):
                batch.append(row)
                if len(batch) >= batch_size:
                    flush()
            if batch:
                flush()
        except csv.Error as error:
            # A malformed file (e.g. an unterminated quote): keep what was imported, report it.
            reject(report.rows + 2, "__file__", f"unreadable CSV: {error}")
            report.rejected += 1
    report.report_path = report_path
    return report
