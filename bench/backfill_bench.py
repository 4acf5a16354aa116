"""Back-fill throughput into a table that already holds the shared 100,000 bench records.

1. The shared records and their HNSW index (bench/dataset.py: loaded by the first benchmark
   that needs them, reused after; BENCH_RECORDS_SHARED changes the size).
2. `backfill_records` imports a CSV of 5,000 rows (the index is maintained row by row); rows per
   second, wall clock, with the load average. The rows stay: deleting from the HNSW-indexed
   table would cost the next VACUUM minutes (bench/dataset.py); their external ids are new on
   every run.
3. The Python side alone (validating and scoring, no database) on the same rows, the batch path
   and the row path it replaced, so the share of the database is visible in the same run.
4. The database alone: 200 rows copied within the table by INSERT ... SELECT, with the HNSW
   index (kept) and without it (the index dropped and the rows rolled back), ms per row.
"""

import os
import sys
import time
from pathlib import Path

from harness import load_line, setup_django, write_section

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dataset import (
    HNSW_INDEX,
    SHARED_RECORDS,
    backfill_import_seconds,
    ensure_model,
    records_shared,
    synthetic_rows,
)

SMALL_IMPORT = 5_000
INDEX_PROBE_ROWS = 200
SEED = 11


def timed_import(rows):
    from django.db import connection

    run = f"{time.time_ns():x}"
    seconds = backfill_import_seconds(rows, f"bench-{run}")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM records_predictionrecord WHERE external_id LIKE %s",
            [f"bench-{run}-%"],
        )
        assert cursor.fetchone()[0] == len(rows)
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [HNSW_INDEX])
        assert cursor.fetchone()[0], "the HNSW index must be there after the import"
    return {"rows": len(rows), "seconds": seconds, "rows_per_second": len(rows) / seconds}


def python_only(rows):
    """Validation and scoring of the rows as the back-fill does them, without the database."""
    from records.services import backfill_scorer

    prepare = backfill_scorer(model_id="credit-default")

    text_rows = [
        {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in row.items()}
        for row in rows
    ]
    started = time.perf_counter()
    for start in range(0, len(text_rows), 500):
        prepare(text_rows[start : start + 500])
    seconds = time.perf_counter() - started
    return {"rows": len(rows), "seconds": seconds, "rows_per_second": len(rows) / seconds}


def python_row_path(model_version, rows):
    """The same rows through the row path the back-fill used before (a Scoring per row)."""
    from risk.selectors import Scoring, model_score_rows

    text_rows = [
        {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in row.items()}
        for row in rows
    ]
    started = time.perf_counter()
    for start in range(0, len(text_rows), 500):
        for result in model_score_rows(
            model_version=model_version, rows=text_rows[start : start + 500], coerce_strings=True
        ):
            if isinstance(result, Scoring):
                result.drivers_as_json()
    seconds = time.perf_counter() - started
    return {"rows": len(rows), "seconds": seconds, "rows_per_second": len(rows) / seconds}


def table_count():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM records_predictionrecord")
        return cursor.fetchone()[0]


def index_cost():
    """ms per row of INSERT ... SELECT within the table, with and without the HNSW index."""
    from django.db import connection, transaction

    statement = (
        "INSERT INTO records_predictionrecord (created_at, model_id, model_version, features, "
        "embedding, risk_score, risk_label, drivers, base_logit, source, external_id) "
        "SELECT created_at, model_id, model_version, features, embedding, risk_score, "
        "risk_label, drivers, base_logit, source, 'probe-' || id FROM records_predictionrecord "
        f"ORDER BY id DESC LIMIT {INDEX_PROBE_ROWS}"
    )
    figures = {}
    for label, drop in (("with_index_ms", False), ("without_index_ms", True)):
        with transaction.atomic(), connection.cursor() as cursor:
            if drop:
                cursor.execute(f"DROP INDEX {HNSW_INDEX}")
            started = time.perf_counter()
            cursor.execute(statement)
            figures[label] = (time.perf_counter() - started) * 1000 / INDEX_PROBE_ROWS
            # The rows inserted with the index stay: rolled back, they would leave dead entries
            # in the HNSW graph for the next VACUUM to repair (bench/dataset.py). Without the
            # index, rolling back leaves none, and restores the index.
            transaction.set_rollback(drop)
    return figures


def main():
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    setup_django()
    import numpy as np

    rng = np.random.default_rng(SEED)
    model_version = ensure_model()
    shared = records_shared()
    table_rows = table_count()
    small_rows = synthetic_rows(SMALL_IMPORT, rng)
    # Best of three, the two paths alternating, so a burst of other work hits both alike.
    runs = [(python_only(small_rows), python_row_path(model_version, small_rows)) for _ in range(3)]
    python = max((run[0] for run in runs), key=lambda run: run["rows_per_second"])
    row_path = max((run[1] for run in runs), key=lambda run: run["rows_per_second"])
    print("python row path", row_path, load_line(), flush=True)
    print("python only", python, load_line(), flush=True)
    small = timed_import(small_rows)
    print("small import", small, load_line(), flush=True)
    index = index_cost()
    print("database per row", index, load_line(), flush=True)
    markdown = f"""
`backfill_records` from a CSV with an `external_id` column into a table of {table_rows:,} records
(the {SHARED_RECORDS:,} shared bench records and {table_rows - SHARED_RECORDS:,} that other
benchmarks added) with its HNSW index; rows per second, wall clock (reading the file, validating, scoring, COPY,
commits, index). "Python only" runs the validation and scoring of the same rows without the
database (best of three runs, the batch and the row path alternating), and the database
alone, so the share of each is visible in the same run.

| import | rows | seconds | rows/s | target |
| --- | ---: | ---: | ---: | --- |
| small: index kept, maintained per row | {small["rows"]:,} | {small["seconds"]:.2f} | **{small["rows_per_second"]:,.0f}** | >= 2,000 |
| Python only: batch validation and scoring, same small rows | {python["rows"]:,} | {python["seconds"]:.2f} | {python["rows_per_second"]:,.0f} | (reference) |
| database only: INSERT ... SELECT with the HNSW index | | | {1000 / index["with_index_ms"]:,.0f} | {index["with_index_ms"]:.2f} ms a row |
| database only: the same without the index | | | {1000 / index["without_index_ms"]:,.0f} | {index["without_index_ms"]:.2f} ms a row |
| Python only: the row path (Scoring per row), same rows | {row_path["rows"]:,} | {row_path["seconds"]:.2f} | {row_path["rows_per_second"]:,.0f} | (reference) |

The index is the HNSW on the embedding in half precision (records/0007), which costs ~45 % less
per insert than the full-precision one it replaced at the same recall; a lower ef_construction
and two writers at once were measured too ("HNSW options for the back-fill"). The index is
still what keeps the import under its target: the database alone inserts ~30x faster without it.
"""  # noqa: E501 (the table rows)
    write_section(
        "backfill_bench",
        title="Back-fill into a populated table",
        markdown=markdown,
        raw={
            "table_rows": table_rows,
            "shared_records": shared,
            "python_only": python,
            "python_row_path": row_path,
            "small": small,
            "database_per_row": index,
        },
    )


if __name__ == "__main__":
    main()
