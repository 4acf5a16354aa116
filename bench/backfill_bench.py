"""Back-fill throughput into a table that already holds the shared 100,000 bench records.

1. The shared records and their HNSW index (bench/dataset.py: loaded by the first benchmark
   that needs them, reused after; BENCH_RECORDS_SHARED changes the size).
2. `backfill_records` imports a CSV of 5,000 rows (the index is maintained row by row); rows per
   second, wall clock, with the load average. The rows stay: deleting from the HNSW-indexed
   table would cost the next VACUUM minutes (bench/dataset.py); their external ids are new on
   every run. Then the same with one writer (`--writers 1`, the path before two writers) on
   5,000 other applicants: importing the same ones again would insert vectors the graph already
   holds, which costs the index ~40 % less than new ones.
3. The Python side alone (validating and scoring, no database) on the same rows, the batch path
   and the row path it replaced, so the share of the database is visible in the same run.
4. The database alone, ms per row by INSERT ... SELECT with the HNSW index (kept) and without it
   (the index dropped and the rows rolled back): 200 rows copied within the table, and 200 new
   scored applicants from a staging table, as the back-fill inserts them. A copied row's vector
   is already in the graph, so the copies understate what the index costs an import.
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


def timed_import(rows, **options):
    from django.db import connection

    run = f"{time.time_ns():x}"
    seconds = backfill_import_seconds(rows, f"bench-{run}", **options)
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


PROBE_COLUMNS = (
    "created_at, model_id, model_version, features, embedding, risk_score, risk_label, drivers, "
    "base_logit, source"
)


def new_rows_staged(rows, run):
    """A temporary table `probe_new` holding `rows` scored as the back-fill scores them, with
    external ids `run`-0, `run`-1, ... (the applicants' vectors are not in the table yet)."""
    from django.db import connection
    from django.utils import timezone
    from pgvector.psycopg import register_vector

    from records.services import BACKFILL_COPY_COLUMNS, backfill_copy_values, backfill_scorer

    text_rows = [
        {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in row.items()}
        for row in rows
    ]
    prepared = backfill_scorer(model_id="credit-default")(text_rows)
    now = timezone.now()
    connection.ensure_connection()
    register_vector(connection.connection)
    names = ", ".join(name for name, _type in BACKFILL_COPY_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS probe_new")
        cursor.execute(
            f"CREATE TEMPORARY TABLE probe_new AS SELECT {names} "
            "FROM records_predictionrecord WITH NO DATA"
        )
    with (
        connection.connection.cursor() as raw_cursor,
        raw_cursor.copy(f"COPY probe_new ({names}) FROM STDIN (FORMAT BINARY)") as copy,
    ):
        copy.set_types([type_name for _name, type_name in BACKFILL_COPY_COLUMNS])
        for index, row in enumerate(prepared):
            copy.write_row(backfill_copy_values(row, now=now, external_id=f"{run}-{index}"))


def index_cost(new_rows):
    """ms per row of INSERT ... SELECT, with and without the HNSW index: rows copied within the
    table (their vectors already in the graph), and new scored applicants from a staging table."""
    from django.db import connection, transaction

    copied = (
        f"INSERT INTO records_predictionrecord ({PROBE_COLUMNS}, external_id) "
        f"SELECT {PROBE_COLUMNS}, 'probe-' || id FROM records_predictionrecord "
        f"ORDER BY id DESC LIMIT {INDEX_PROBE_ROWS}"
    )
    run = f"probe-new-{time.time_ns():x}"
    new_rows_staged(new_rows, run)
    # The same staged applicants twice: kept with the index, rolled back without it.
    fresh = (
        f"INSERT INTO records_predictionrecord ({PROBE_COLUMNS}, external_id) "
        f"SELECT {PROBE_COLUMNS}, external_id || %s FROM probe_new"
    )
    figures = {}
    for label, statement, drop in (
        ("with_index_ms", copied, False),
        ("without_index_ms", copied, True),
        ("new_with_index_ms", fresh, False),
        ("new_without_index_ms", fresh, True),
    ):
        with transaction.atomic(), connection.cursor() as cursor:
            if drop:
                cursor.execute(f"DROP INDEX {HNSW_INDEX}")
            started = time.perf_counter()
            cursor.execute(statement, ["-b" if drop else ""] if "%s" in statement else None)
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
    one_writer = timed_import(synthetic_rows(SMALL_IMPORT, rng), writers=1)
    print("small import, one writer", one_writer, load_line(), flush=True)
    index = index_cost(synthetic_rows(INDEX_PROBE_ROWS, rng))
    print("database per row", index, load_line(), flush=True)
    markdown = f"""
`backfill_records` from a CSV with an `external_id` column into a table of {table_rows:,} records
(the {SHARED_RECORDS:,} shared bench records and {table_rows - SHARED_RECORDS:,} that other
benchmarks added) with its HNSW index; rows per second, wall clock (reading the file, validating, scoring, COPY,
commits, index), with the default two writers (two connections, each batch committing on its
own) and with one. "Python only" runs the validation and scoring of the same rows without the
database (best of three runs, the batch and the row path alternating), and the database
alone, so the share of each is visible in the same run.

| import | rows | seconds | rows/s | target |
| --- | ---: | ---: | ---: | --- |
| small: index kept, maintained per row | {small["rows"]:,} | {small["seconds"]:.2f} | **{small["rows_per_second"]:,.0f}** | >= 2,000 |
| the same, one writer (`--writers 1`), 5,000 other applicants | {one_writer["rows"]:,} | {one_writer["seconds"]:.2f} | {one_writer["rows_per_second"]:,.0f} | (reference) |
| Python only: batch validation and scoring, same small rows | {python["rows"]:,} | {python["seconds"]:.2f} | {python["rows_per_second"]:,.0f} | (reference) |
| database only: INSERT ... SELECT of new applicants with the HNSW index | | | {1000 / index["new_with_index_ms"]:,.0f} | {index["new_with_index_ms"]:.2f} ms a row |
| database only: the same without the index | | | {1000 / index["new_without_index_ms"]:,.0f} | {index["new_without_index_ms"]:.2f} ms a row |
| database only: rows copied within the table (vectors already in the graph), with the index | | | {1000 / index["with_index_ms"]:,.0f} | {index["with_index_ms"]:.2f} ms a row |
| database only: the same copies without the index | | | {1000 / index["without_index_ms"]:,.0f} | {index["without_index_ms"]:.2f} ms a row |
| Python only: the row path (Scoring per row), same rows | {row_path["rows"]:,} | {row_path["seconds"]:.2f} | {row_path["rows_per_second"]:,.0f} | (reference) |

The index is the HNSW on the embedding in half precision (records/0007), which costs ~45 % less
per insert than the full-precision one it replaced at the same recall; a lower ef_construction
fails recall ("HNSW options for the back-fill"). The index is still what keeps the import under
its target: the database alone inserts new applicants ~50x faster without it, and a row's
index insert is PostgreSQL CPU (pgvector loading graph elements from shared buffers and
computing distances), so two writers gain at most the second core, when it is free.
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
            "small_one_writer": one_writer,
            "database_per_row": index,
        },
    )


if __name__ == "__main__":
    main()
