"""Risk and records in one run: predict latency, nearest-neighbour search, back-fill throughput.

1. `POST /api/v1/predict/` latency: DRF's test client in-process and real HTTP against a
   threaded server in this process, with the scoring service alone as the baseline.
2. 100,000 synthetic records (features sampled from the German Credit marginals, scored by the
   shipped model), bulk-loaded with COPY; the HNSW index rebuilt afterwards (timed).
3. k=10 nearest-neighbour queries: HNSW (iterative scan) vs an exact sequential scan: latency and
   recall@10. Plus a filtered case (a model holding 10 % of the rows) with and without pgvector's
   iterative scan, to show why it is on.
4. `backfill_records` rows per second on a 5,000-row CSV, with the 100k rows and index in place.
"""

import csv
import io
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

from harness import full_size, setup_django, summarize, time_calls, write_section

# `make bench`: 10k and 100k rows; `make bench-full`: 10k, 100k and 1M (growth, 1M target).
SIZES = [10_000, 100_000, 1_000_000] if full_size() else [10_000, 100_000]
if os.environ.get("BENCH_RECORDS"):
    SIZES = [int(os.environ["BENCH_RECORDS"])]
RECORDS = SIZES[-1]
EF_SEARCH_VALUES = (40, 100)
FILTERED_SHARE = 0.10  # rows of a second model, for the filtered-search case
QUERIES = 100
K = 10
PREDICT_CALLS = int(os.environ.get("BENCH_PREDICT_CALLS", "300"))
BACKFILL_ROWS = 5_000
SEED = 7


def ensure_model():
    from risk.models import ModelVersion
    from risk.services import model_version_register_trained
    from risk.training import credit_default_train

    found = (
        ModelVersion.objects.select_related("model")
        .filter(model__key="credit-default", stage="production")
        .first()
    )
    if found:
        return found
    return model_version_register_trained(
        key="credit-default", trained=credit_default_train(), promote=True
    )


def synthetic_rows(count, rng):
    """Applicants drawn feature by feature from the data set's empirical distribution."""
    from risk.training import german_credit_frame

    frame, _target = german_credit_frame()
    columns = {name: rng.choice(frame[name].to_numpy(), size=count) for name in frame.columns}
    rows = []
    for index in range(count):
        row = {}
        for name, values in columns.items():
            value = values[index]
            row[name] = value.item() if hasattr(value, "item") else value
        rows.append(row)
    return rows


def bench_predict(model_version):
    import requests
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
    from django.core.wsgi import get_wsgi_application
    from rest_framework.test import APIClient

    from core.services import api_key_create
    from records.services import record_predict
    from risk.tests.factories import applicant

    _key, raw_key = api_key_create(
        name=f"bench-{time.time_ns()}", scopes=["predict", "records:read"]
    )
    from risk.selectors import model_score, model_version_loaded

    features = applicant(0)
    body = {"model_id": "credit-default", "features": features}
    loaded = model_version_loaded(model_version=model_version)
    scoring_alone = time_calls(lambda: loaded.score_many([features]), repeat=2000, warmup=50)
    validate_and_score = time_calls(
        lambda: model_score(model_key="credit-default", features=features), repeat=PREDICT_CALLS
    )

    service = time_calls(
        lambda: record_predict(model_id="credit-default", features=features, source="api"),
        repeat=PREDICT_CALLS,
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")

    def in_process():
        response = client.post("/api/v1/predict/", body, format="json")
        assert response.status_code == 201, response.content

    in_process_samples = time_calls(in_process, repeat=PREDICT_CALLS)

    class QuietHandler(WSGIRequestHandler):
        # Headers and body go out in separate writes: without TCP_NODELAY the keep-alive client
        # waits ~40 ms for the delayed ACK on every request.
        disable_nagle_algorithm = True

        def log_message(self, *args):
            pass

    server = ThreadedWSGIServer(("127.0.0.1", 0), QuietHandler, allow_reuse_address=True)
    server.set_app(get_wsgi_application())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    session = requests.Session()
    session.headers["Authorization"] = f"Api-Key {raw_key}"
    url = f"http://127.0.0.1:{server.server_port}/api/v1/predict/"

    def over_http():
        response = session.post(url, json=body, timeout=30)
        assert response.status_code == 201, response.text

    http_samples = time_calls(over_http, repeat=PREDICT_CALLS)
    server.shutdown()
    bench_predict.raw_key = raw_key
    return {
        "scoring_alone": summarize(scoring_alone),
        "validate_and_score": summarize(validate_and_score),
        "service": summarize(service),
        "api_in_process": summarize(in_process_samples),
        "api_http": summarize(http_samples),
    }


def load_records(model_version, rng, count):
    """Score `count` synthetic applicants and COPY them in; rebuild the HNSW index (timed)."""
    RECORDS = count  # the module constant, per size
    import numpy as np
    from django.db import connection
    from django.utils import timezone
    from pgvector.psycopg import register_vector
    from psycopg.types.json import Jsonb

    from risk.selectors import model_version_loaded

    loaded = model_version_loaded(model_version=model_version)
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE records_predictionrecord")
        cursor.execute("DROP INDEX IF EXISTS record_embedding_hnsw")
    raw = connection.connection
    register_vector(raw)
    started = time.perf_counter()
    filtered_count = int(RECORDS * FILTERED_SHARE)
    now = timezone.now()
    columns = (
        "created_at, model_id, model_version, features, embedding, risk_score, risk_label, "
        "drivers, base_logit, source"
    )
    types = [
        "timestamptz",
        "varchar",
        "int4",
        "jsonb",
        "vector",
        "float8",
        "varchar",
        "jsonb",
        "float8",
        "varchar",
    ]
    query_rows = synthetic_rows(QUERIES, rng)
    with (
        raw.cursor() as cursor,
        cursor.copy(
            f"COPY records_predictionrecord ({columns}) FROM STDIN (FORMAT BINARY)"
        ) as copy,
    ):
        copy.set_types(types)
        for start in range(0, RECORDS, 10_000):
            rows = synthetic_rows(min(10_000, RECORDS - start), rng)
            for offset, scoring in enumerate(loaded.score_many(rows)):
                index = start + offset
                copy.write_row(
                    (
                        now,
                        "credit-shadow" if index < filtered_count else "credit-default",
                        model_version.version,
                        Jsonb(scoring.features),
                        scoring.embedding.astype(np.float32),
                        scoring.score,
                        scoring.label,
                        Jsonb(scoring.drivers_as_json()),
                        scoring.base_logit,
                        "backfill",
                    )
                )
    raw.commit()
    load_seconds = time.perf_counter() - started
    with connection.cursor() as cursor:
        # maintenance_work_mem comes from the server's settings (core/embedded_postgres.py).
        started = time.perf_counter()
        cursor.execute(
            "CREATE INDEX record_embedding_hnsw ON records_predictionrecord "
            "USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)"
        )
        index_seconds = time.perf_counter() - started
        cursor.execute("ANALYZE records_predictionrecord")
        # A benchmark of an index that is not there would measure sequential scans.
        cursor.execute(
            "SELECT count(*), pg_relation_size('record_embedding_hnsw') "
            "FROM records_predictionrecord"
        )
        rows, index_bytes = cursor.fetchone()
        assert rows == count, rows
        assert index_bytes > count * 384 * 4, index_bytes
    queries = [s.embedding for s in loaded.score_many(query_rows)]
    return {"load_seconds": load_seconds, "index_seconds": index_seconds}, queries


def explain(model_id, vector):
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        cursor.execute(
            "EXPLAIN SELECT id FROM records_predictionrecord WHERE model_id = %s "
            "ORDER BY embedding <=> %s::vector LIMIT 10",
            [model_id, "[" + ",".join(f"{v:.6f}" for v in vector) + "]"],
        )
        return "\n".join(row[0] for row in cursor.fetchall())


def recall(approximate, exact):
    """recall@k counting ties: a hit is any answer no farther than the exact k-th distance."""
    if not exact:
        return 1.0
    kth = exact[-1].distance + 1e-9
    return sum(1 for n in approximate if n.distance <= kth) / len(exact)


def bench_nearest(queries, ef_search):
    from django.db import connection, transaction
    from django.test import override_settings

    from records.selectors import record_nearest

    with override_settings(RECORDS_HNSW_EF_SEARCH=ef_search):
        return _bench_nearest(queries, connection, transaction, record_nearest)


def _bench_nearest(queries, connection, transaction, record_nearest):
    results = {}
    for model_id in ("credit-default", "credit-shadow"):
        hnsw_times, exact_times, recalls, counts = [], [], [], []
        for vector in queries:
            started = time.perf_counter()
            exact = record_nearest(model_id=model_id, embedding=vector, k=K, exact=True)
            exact_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            approximate = record_nearest(model_id=model_id, embedding=vector, k=K)
            hnsw_times.append(time.perf_counter() - started)
            recalls.append(recall(approximate, exact))
            counts.append(len(approximate))
        results[model_id] = {
            "hnsw": summarize(hnsw_times),
            "exact": summarize(exact_times),
            "recall_at_10": statistics.fmean(recalls),
            "min_recall_at_10": min(recalls),
            "min_rows": min(counts),
            "plan": explain(model_id, queries[0]),
        }
    # The filtered model without the iterative scan: the index stops after ef_search candidates.
    found = []
    for vector in queries:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL hnsw.iterative_scan = off")
            cursor.execute(
                "SELECT count(*) FROM (SELECT id FROM records_predictionrecord "
                "WHERE model_id = 'credit-shadow' ORDER BY embedding <=> %s::vector LIMIT 10) t",
                ["[" + ",".join(f"{v:.6f}" for v in vector) + "]"],
            )
            found.append(cursor.fetchone()[0])
    results["credit-shadow"]["rows_without_iterative_scan"] = statistics.fmean(found)
    return results


def bench_backfill(rng):
    from django.core.management import call_command

    rows = synthetic_rows(BACKFILL_ROWS, rng)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "history.csv"
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(list(rows[0]))
            for row in rows:
                writer.writerow(
                    [str(v).lower() if isinstance(v, bool) else v for v in row.values()]
                )
        started = time.perf_counter()
        call_command("backfill_records", str(path), model="credit-default", stdout=io.StringIO())
        seconds = time.perf_counter() - started
    return {"rows": BACKFILL_ROWS, "seconds": seconds, "rows_per_second": BACKFILL_ROWS / seconds}


def bench_records_list(raw_key):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    results = {}
    for label, query in (
        ("newest", ""),
        ("model + label", "?model_id=credit-default&risk_label=high"),
        ("model + score range", "?model_id=credit-shadow&min_score=0.5&max_score=0.9"),
    ):

        def listing(query=query):
            response = client.get(f"/api/v1/records/{query}")
            assert response.status_code == 200, response.content

        results[label] = summarize(time_calls(listing, repeat=60, warmup=5))
    return results


def storage():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('shared_buffers'), "
            "pg_size_pretty(pg_relation_size('record_embedding_hnsw')), "
            "pg_size_pretty(pg_relation_size('records_predictionrecord'))"
        )
        shared_buffers, index_size, table_size = cursor.fetchone()
    return {"shared_buffers": shared_buffers, "index_size": index_size, "table_size": table_size}


def shadow_rows(result):
    return result["nearest"][EF_SEARCH_VALUES[-1]]["credit-shadow"]["rows_without_iterative_scan"]


def ms(summary, key):
    return f"{summary[key] / 1000:.2f}"


def main():
    # Request logs would dominate the output (and the HTTP timings) of a benchmark.
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    setup_django()
    import numpy as np
    from django.db import connection

    rng = np.random.default_rng(SEED)
    total_started = time.perf_counter()
    model_version = ensure_model()
    predict = bench_predict(model_version)
    print("predict done", {k: round(v["median_us"]) for k, v in predict.items()}, flush=True)
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE records_predictionrecord")
    backfill_empty = bench_backfill(rng)
    print("backfill on an empty table done", backfill_empty, flush=True)
    per_size = {}
    for count in SIZES:
        loading, queries = load_records(model_version, rng, count)
        print(count, "load done", loading, flush=True)
        nearest = {ef: bench_nearest(queries, ef) for ef in EF_SEARCH_VALUES}
        print(count, "nearest done", flush=True)
        listing = bench_records_list(bench_predict.raw_key)
        backfill = bench_backfill(rng)
        print(count, "backfill done", backfill, flush=True)
        per_size[count] = {
            "loading": loading,
            "nearest": nearest,
            "records_list": listing,
            "backfill": backfill,
            "storage": storage(),
        }
    total = time.perf_counter() - total_started

    def predict_row(label, key):
        summary = predict[key]
        cells = [ms(summary, "median_us"), ms(summary, "p95_us"), ms(summary, "p99_us")]
        return f"| {label} | " + " | ".join(cells) + " |"

    lines = [
        f"### Predict (one applicant, {PREDICT_CALLS} calls each, ms)",
        "",
        "| path | median | p95 | p99 |",
        "| --- | --- | --- | --- |",
        predict_row(
            "scoring alone: `LoadedModel.score_many` (encode, logit from the model's own "
            "coefficients, drivers, embedding)",
            "scoring_alone",
        ),
        predict_row("`model_score`: model lookup, validation, scoring", "validate_and_score"),
        predict_row("`record_predict` service (validate, score, store)", "service"),
        predict_row("API, DRF test client in-process (API key auth)", "api_in_process"),
        predict_row("API over HTTP (threaded dev server in this process)", "api_http"),
        "",
        "Scores and drivers equal scikit-learn's own `decision_function` / `predict_proba` to "
        "1e-9 on all 1,000 German Credit rows (risk/tests/test_scoring.py). Predict over HTTP "
        "under load, against gunicorn, is in the HTTP section.",
        "",
        f"### Nearest neighbours (k={K}, 384 dimensions, {QUERIES} queries, ms), records list "
        "and back-fill, per table size",
        "",
        "Synthetic applicants (features drawn from the German Credit marginals, scored by the "
        f"shipped model; {FILTERED_SHARE:.0%} of them under a second model), loaded with COPY; "
        "HNSW (cosine, m=16, ef_construction=64) built after the load. Queries filter by model "
        "with `hnsw.iterative_scan = relaxed_order`; recall@10 against an exact sequential scan, "
        "counting ties (a hit is no farther than the exact 10th).",
        "",
        "| rows | load s | index build s | model (share) | ef_search | HNSW median | HNSW p95 "
        "| exact median | recall@10 (min) |",
        "| ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for count, result in per_size.items():
        for ef, nearest in result["nearest"].items():
            for model_id, share in (("credit-default", 0.9), ("credit-shadow", 0.1)):
                found = nearest[model_id]
                lines.append(
                    f"| {count:,} | {result['loading']['load_seconds']:.0f} "
                    f"| {result['loading']['index_seconds']:.0f} | `{model_id}` ({share:.0%}) "
                    f"| {ef} | {ms(found['hnsw'], 'median_us')} | {ms(found['hnsw'], 'p95_us')} "
                    f"| {ms(found['exact'], 'median_us')} "
                    f"| {found['recall_at_10']:.3f} ({found['min_recall_at_10']:.1f}) |"
                )
    lines += [
        "",
        "| rows | `GET /api/v1/records/` newest p95 | model + label p95 | model + score range p95 "
        "| back-fill rows/s (5,000-row CSV) | table / HNSW index | shared_buffers |",
        "| ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for count, result in per_size.items():
        listing, sizes = result["records_list"], result["storage"]
        lines.append(
            f"| {count:,} | {ms(listing['newest'], 'p95_us')} "
            f"| {ms(listing['model + label'], 'p95_us')} "
            f"| {ms(listing['model + score range'], 'p95_us')} "
            f"| **{result['backfill']['rows_per_second']:,.0f}** "
            f"| {sizes['table_size']} / {sizes['index_size']} | {sizes['shared_buffers']} |"
        )
    lines += [
        "",
        f"Back-fill into an empty table: **{backfill_empty['rows_per_second']:,.0f} rows/s**. "
        "Records list: DRF test client in-process, API key, 60 calls, ms. The shadow model's "
        "rows without the iterative scan: "
        + ", ".join(
            f"{count:,} rows: {shadow_rows(result):.1f} of {K}"
            for count, result in per_size.items()
        )
        + f". Whole run: {total:.0f} s.",
    ]
    write_section(
        "records_bench",
        title="Risk scoring and prediction records",
        markdown="\n".join(lines),
        raw={
            "predict": predict,
            "backfill_empty_table": backfill_empty,
            "sizes": {str(count): result for count, result in per_size.items()},
        },
    )


if __name__ == "__main__":
    main()
