"""What a cheaper HNSW index buys the back-fill, and what it costs the searches, in one run.

On the shared 100,000 records (bench/dataset.py), each option's index is built alone (the
others dropped), then measured the same way:

- build time and size;
- insert cost: 500 new scored rows moved from a staging table into the records by one
  INSERT ... SELECT (rolled back), ms per row; the same by two writers at once (two
  connections, 250 rows each: what a parallel COPY of the back-fill would do); after a warm-up
  insert of 300 other rows, three rounds alternating the two, medians; and
  `backfill_records` on a 2,000-row CSV, end to end;
- k=10 searches as `record_nearest` sends them (model filter, iterative scan), 100 queries per
  model and ef_search: p95 latency and recall@10 against the exact full-precision answer
  (ties counted by the true distance).

The options: the index as it was before records/0007 (vector, m=16, ef_construction=64), a
lower ef_construction (32), and a halfvec expression index (`(embedding::halfvec(384))`, which
queries must order by) at 64 (adopted by records/0007) and 32. The shared index is restored at
the end. Not part of `make bench` (four index builds); run it on its own:
`.venv/bin/python bench/hnsw_options.py`.
"""

import os
import statistics
import threading
import time

from dataset import (
    HNSW_DDL,
    HNSW_INDEX,
    SHARED_RECORDS,
    backfill_import_seconds,
    ensure_model,
    query_embeddings,
    record_copy_row,
    records_shared,
    synthetic_rows,
)
from harness import load_line, setup_django, summarize, write_section

QUERIES = int(os.environ.get("BENCH_HNSW_QUERIES", "100"))
K = 10
EF_SEARCH_VALUES = (40, 100)
PROBE_ROWS = 500
WARMUP_ROWS = 300
ROUNDS = 3
BACKFILL_ROWS = 2_000
MODELS = ("credit-default", "credit-shadow")
SEED = 21
VECTOR = "embedding"
HALFVEC = "(embedding::halfvec(384))"
OPTIONS = [
    # name, indexed expression, operator class, ef_construction
    ("vector, ef_construction 64 (before 0007)", VECTOR, "vector_cosine_ops", 64),
    ("vector, ef_construction 32", VECTOR, "vector_cosine_ops", 32),
    ("halfvec expression, ef_construction 64 (0007)", HALFVEC, "halfvec_cosine_ops", 64),
    ("halfvec expression, ef_construction 32", HALFVEC, "halfvec_cosine_ops", 32),
]
COLUMNS = (
    "created_at, model_id, model_version, features, embedding, risk_score, risk_label, "
    "drivers, base_logit, source"
)


def literal(vector) -> str:
    return "[" + ",".join(f"{v:.7g}" for v in vector) + "]"


def exact_answers(queries):
    """Per model and query: the exact k nearest ids and the k-th distance (full precision)."""
    from django.db import connection, transaction

    answers = {}
    for model_id in MODELS:
        answers[model_id] = []
        for vector in queries:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SET LOCAL enable_indexscan = off")
                cursor.execute(
                    "SELECT id, embedding <=> %s::vector AS d FROM records_predictionrecord "
                    "WHERE model_id = %s ORDER BY d, id LIMIT %s",
                    [literal(vector), model_id, K],
                )
                rows = cursor.fetchall()
            answers[model_id].append(rows[-1][1])
    return answers


def search(cursor, expression, model_id, vector, ef_search):
    """One k=10 search as record_nearest sends it, on `expression`."""
    cast = "halfvec(384)" if expression == HALFVEC else "vector"
    cursor.execute(
        "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true), "
        "set_config('hnsw.ef_search', %s, true)",
        [str(ef_search)],
    )
    cursor.execute(
        f"SELECT id FROM records_predictionrecord WHERE model_id = %s "
        f"ORDER BY {expression} <=> %s::{cast} LIMIT %s",
        [model_id, literal(vector), K],
    )
    return [row[0] for row in cursor.fetchall()]


def bench_searches(expression, queries, exact):
    from django.db import connection, transaction

    results = {}
    for ef_search in EF_SEARCH_VALUES:
        for model_id in MODELS:
            times, recalls = [], []
            for vector, kth in zip(queries, exact[model_id], strict=True):
                with transaction.atomic(), connection.cursor() as cursor:
                    started = time.perf_counter()
                    ids = search(cursor, expression, model_id, vector, ef_search)
                    times.append(time.perf_counter() - started)
                    cursor.execute(
                        "SELECT count(*) FROM records_predictionrecord "
                        "WHERE id = ANY(%s) AND embedding <=> %s::vector <= %s",
                        [ids, literal(vector), kth + 1e-9],
                    )
                    recalls.append(cursor.fetchone()[0] / K)
            results[f"{model_id} ef {ef_search}"] = {
                **summarize(times),
                "recall_at_10": statistics.fmean(recalls),
                "min_recall_at_10": min(recalls),
            }
    with connection.cursor() as cursor:
        cursor.execute(
            f"EXPLAIN SELECT id FROM records_predictionrecord WHERE model_id = 'credit-default' "
            f"ORDER BY {expression} <=> %s::{'halfvec(384)' if expression == HALFVEC else 'vector'}"
            " LIMIT 10",
            [literal(queries[0])],
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert HNSW_INDEX in plan, plan
    return results


def stage_probe_rows(model_version, rng):
    """PROBE_ROWS new scored rows in a staging table (no index) for the insert probes."""
    from django.db import connection
    from django.utils import timezone
    from pgvector.psycopg import register_vector

    from risk.selectors import model_version_loaded

    loaded = model_version_loaded(model_version=model_version)
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_probe")
        cursor.execute(
            "CREATE TABLE bench_probe "
            "(LIKE records_predictionrecord INCLUDING DEFAULTS INCLUDING IDENTITY)"
        )
    raw = connection.connection
    register_vector(raw)
    now = timezone.now()
    with (
        raw.cursor() as cursor,
        cursor.copy(f"COPY bench_probe ({COLUMNS}) FROM STDIN") as copy,
    ):
        for scoring in loaded.score_many(synthetic_rows(PROBE_ROWS + WARMUP_ROWS, rng)):
            copy.write_row(record_copy_row(now, "credit-default", model_version.version, scoring))
    raw.commit()


def insert_probe(offset: int, count: int, connection_factory) -> float:
    """Seconds to move `count` staged rows into the records in one statement (rolled back)."""
    with connection_factory() as conn, conn.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute(
            f"INSERT INTO records_predictionrecord ({COLUMNS}) SELECT {COLUMNS} FROM bench_probe "
            "ORDER BY id OFFSET %s LIMIT %s",
            [offset, count],
        )
        seconds = time.perf_counter() - started
        conn.rollback()
    return seconds


def bench_inserts():
    import psycopg
    from django.db import connection

    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)

    def connect():
        return psycopg.connect(**params)

    # A freshly built index is written around shared_buffers: warm it with an insert of other
    # rows first, then alternate the two ways three times (medians), so bursts of other work on
    # this shared machine hit both alike.
    insert_probe(PROBE_ROWS, WARMUP_ROWS, connect)
    serial, parallel = [], []
    half = PROBE_ROWS // 2
    for _ in range(ROUNDS):
        serial.append(insert_probe(0, PROBE_ROWS, connect) * 1000 / PROBE_ROWS)
        threads = [
            threading.Thread(target=insert_probe, args=(offset, half, connect))
            for offset in (0, half)
        ]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        parallel.append((time.perf_counter() - started) * 1000 / PROBE_ROWS)
    return {
        "serial_ms_per_row": statistics.median(serial),
        "two_writers_ms_per_row": statistics.median(parallel),
        "serial_runs": serial,
        "two_writers_runs": parallel,
    }


def bench_backfill(rng):
    seconds = backfill_import_seconds(synthetic_rows(BACKFILL_ROWS, rng), f"hn{time.time_ns():x}")
    return BACKFILL_ROWS / seconds


def build(expression, opclass, ef_construction):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"DROP INDEX IF EXISTS {HNSW_INDEX}")
        started = time.perf_counter()
        cursor.execute(
            f"CREATE INDEX {HNSW_INDEX} ON records_predictionrecord USING hnsw "
            f"({expression} {opclass}) WITH (m = 16, ef_construction = {ef_construction})"
        )
        seconds = time.perf_counter() - started
        cursor.execute("SELECT pg_relation_size(%s::regclass)", [HNSW_INDEX])
        size = cursor.fetchone()[0]
    return {"build_seconds": seconds, "index_mb": size / 1024 / 1024}


def main():
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    setup_django()
    import numpy as np
    from django.db import connection

    shared = records_shared()
    rng = np.random.default_rng(SEED)
    model_version = ensure_model()
    queries = query_embeddings(QUERIES, seed=SEED)
    exact = exact_answers(queries)
    print("exact answers done", load_line(), flush=True)
    stage_probe_rows(model_version, rng)
    results = {}
    for name, expression, opclass, ef_construction in OPTIONS:
        built = build(expression, opclass, ef_construction)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE records_predictionrecord")
        searches = bench_searches(expression, queries, exact)
        inserts = bench_inserts()
        backfill = bench_backfill(rng)
        results[name] = {**built, **inserts, "backfill_rows_per_second": backfill, **searches}
        print(name, results[name], load_line(), flush=True)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP INDEX IF EXISTS {HNSW_INDEX}")
    without = bench_inserts()
    print("without an index", without, flush=True)
    with connection.cursor() as cursor:
        cursor.execute(HNSW_DDL)  # the shared records' index, as the other benchmarks expect
        cursor.execute("DROP TABLE bench_probe")
    write(results, without, shared)


def write(results, without, shared):
    lines = [
        f"{SHARED_RECORDS:,} shared bench records (plus {shared['extra_rows']:,} added by other "
        f"benchmarks), 384 dimensions, m = 16 throughout. Each index built alone; searches as "
        f"`record_nearest` sends them ({QUERIES} queries per model, k = {K}, iterative scan); "
        "recall@10 against the exact full-precision answer, ties counted by the true distance. "
        f"Inserts: {PROBE_ROWS} new rows by one INSERT ... SELECT (rolled back), and the same "
        f"rows by two connections at once, median of {ROUNDS} alternating rounds after a "
        f"warm-up; back-fill: `backfill_records`, {BACKFILL_ROWS:,}-row "
        "CSV, committed.",
        "",
        "| index | build s | size MB | insert ms/row | 2 writers ms/row | back-fill rows/s "
        "| recall@10 ef 40 (90 % / 10 % model) | p95 ms ef 40 | recall@10 ef 100 | p95 ms ef 100 |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- | --- | --- |",
    ]
    for name, result in results.items():
        cells = []
        for ef in EF_SEARCH_VALUES:
            big, small = result[f"credit-default ef {ef}"], result[f"credit-shadow ef {ef}"]
            cells.append(f"{big['recall_at_10']:.3f} / {small['recall_at_10']:.3f}")
            cells.append(f"{big['p95_us'] / 1000:.1f} / {small['p95_us'] / 1000:.1f}")
        lines.append(
            f"| {name} | {result['build_seconds']:.0f} | {result['index_mb']:.0f} "
            f"| {result['serial_ms_per_row']:.2f} | {result['two_writers_ms_per_row']:.2f} "
            f"| **{result['backfill_rows_per_second']:,.0f}** | " + " | ".join(cells) + " |"
        )
    lines += [
        "",
        f"Without any HNSW index the same insert costs {without['serial_ms_per_row']:.2f} ms a "
        f"row ({without['two_writers_ms_per_row']:.2f} with two writers).",
        "",
        "The adopted index (records/0007) is the one an option may replace only if recall@10 "
        "stays at or above 0.95 at both ef_search values.",
    ]
    write_section(
        "hnsw_options",
        title="HNSW options for the back-fill: insert cost against recall",
        markdown="\n".join(lines),
        raw={"records": SHARED_RECORDS, "options": results, "without_index": without},
    )


if __name__ == "__main__":
    main()
