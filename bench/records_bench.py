"""Risk and records in one run: predict latency, nearest-neighbour search, back-fill throughput.

1. `POST /api/v1/predict/` latency: DRF's test client in-process and real HTTP against a
   threaded server in this process, with the scoring service alone as the baseline.
2. Synthetic records (features sampled from the German Credit marginals, scored by the shipped
   model), bulk-loaded with COPY, the HNSW index built afterwards (timed): the shared 100,000
   (1,000,000 under `make bench-full`; bench/dataset.py, loaded once for every benchmark), and
   the smaller sizes (10,000; and 100,000 at full size) in a schema of their own.
3. k=10 nearest-neighbour queries: HNSW (iterative scan) vs an exact sequential scan: latency and
   recall@10. Plus a filtered case (a model holding 10 % of the rows) with and without pgvector's
   iterative scan, to show why it is on.
4. `GET /api/v1/records/` per filter at each size: the first page and the following one by
   cursor, against the page-number pagination it replaced, with CPU per request and the plans.
5. `backfill_records` rows per second on a CSV (5,000 rows; 2,000 under `make bench`), into an
   empty table and at each size.

One module (about 600 lines) on purpose: the five parts share one loop over the table sizes
(each size is loaded once and every part measures it before the next) and write one section;
split by part, each file would load the sizes again.
"""

import json
import os
import statistics
import threading
import time

from dataset import (
    FILTERED_SHARE,
    HALF_EMBEDDING,
    HNSW_INDEX,
    SHARED_RECORDS,
    backfill_import_seconds,
    ensure_model,
    query_embeddings,
    records_load,
    records_shared,
    records_sized,
    synthetic_rows,
)
from harness import (
    RESULTS_DIR,
    full_size,
    setup_django,
    summarize,
    time_calls,
    write_section,
)
from wrk import cpu_seconds

__all__ = ["ensure_model", "synthetic_rows"]  # bench/http_load.py imports ensure_model from here

# `make bench`: 10k and the shared 100k rows; `make bench-full`: 10k, 100k and the shared 1M
# (growth, 1M target). The sizes below the shared one are loaded in their own schema.
SMALLER_SIZES = [
    size for size in ([10_000, 100_000] if full_size() else [10_000]) if size < SHARED_RECORDS
]
SIZES = [*SMALLER_SIZES, SHARED_RECORDS]
EF_SEARCH_VALUES = (40, 100)
QUERIES = 100
WARM_UP_QUERIES = 100
K = 10
PREDICT_CALLS = int(os.environ.get("BENCH_PREDICT_CALLS", "300"))
# bench/backfill_bench.py measures 5,000 rows into the shared set; here each size gets a smaller
# file under `make bench` to keep the whole run under ten minutes.
BACKFILL_ROWS = 5_000 if full_size() else 2_000
SEED = 7


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


def explain(model_id, vector):
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        cursor.execute(
            "EXPLAIN SELECT id FROM records_predictionrecord WHERE model_id = %s "
            f"ORDER BY {HALF_EMBEDDING} <=> %s::halfvec(384) LIMIT 10",
            [model_id, "[" + ",".join(f"{v:.6f}" for v in vector) + "]"],
        )
        return "\n".join(row[0] for row in cursor.fetchall())


def recall(approximate, exact):
    """recall@k counting ties: a hit is any answer no farther than the exact k-th distance."""
    if not exact:
        return 1.0
    kth = exact[-1].distance + 1e-9
    return sum(1 for n in approximate if n.distance <= kth) / len(exact)


MODELS = ("credit-default", "credit-shadow")


def exact_neighbours(queries):
    """The exact answer (a sequential scan) of every query, per model, and its timings: the
    reference of every ef_search value, computed once."""
    from records.selectors import record_nearest

    answers = {}
    for model_id in MODELS:
        found, times = [], []
        for vector in queries:
            started = time.perf_counter()
            found.append(record_nearest(model_id=model_id, embedding=vector, k=K, exact=True))
            times.append(time.perf_counter() - started)
        answers[model_id] = (found, summarize(times))
    return answers


def nearest_warm_up():
    """Searches for other applicants than the measured ones, per model, at the shipped
    ef_search, timed: right after a load (and the exact scans, which read the whole table) the
    HNSW index is not in memory, and at 1,000,000 records each of these first searches reads
    index pages from disk (~10 ms a page here) instead of shared_buffers. The measured queries
    then show the steady state a serving database has once its index is resident."""
    from records.selectors import record_nearest

    warm_up = {}
    for model_id in MODELS:
        times = []
        for vector in query_embeddings(WARM_UP_QUERIES, seed=SEED + 2):
            started = time.perf_counter()
            record_nearest(model_id=model_id, embedding=vector, k=K)
            times.append(time.perf_counter() - started)
        warm_up[model_id] = summarize(times)
    return warm_up


def settings_ef_search():
    from django.conf import settings

    return settings.RECORDS_HNSW_EF_SEARCH


def backend_pid():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def cpu_per_call(run, calls):
    """`run()`'s result, and the CPU milliseconds per call (of `calls`) it cost this process
    and its PostgreSQL backend: wall time on this shared machine includes other work."""
    backend = backend_pid()
    python_before, postgres_before = time.process_time(), cpu_seconds([backend])
    result = run()
    return result, {
        "python_cpu_ms": (time.process_time() - python_before) / calls * 1000,
        "postgres_cpu_ms": (cpu_seconds([backend]) - postgres_before) / calls * 1000,
    }


def bench_nearest(queries, ef_search, exact):
    from django.test import override_settings

    from records.selectors import record_nearest

    results = {}
    with override_settings(RECORDS_HNSW_EF_SEARCH=ef_search):
        for model_id in MODELS:
            exact_answers, exact_summary = exact[model_id]

            def search_all(model_id=model_id, exact_answers=exact_answers):
                times, recalls, counts = [], [], []
                for vector, reference in zip(queries, exact_answers, strict=True):
                    started = time.perf_counter()
                    approximate = record_nearest(model_id=model_id, embedding=vector, k=K)
                    times.append(time.perf_counter() - started)
                    recalls.append(recall(approximate, reference))
                    counts.append(len(approximate))
                return times, recalls, counts

            (hnsw_times, recalls, counts), cpu = cpu_per_call(search_all, len(queries))
            results[model_id] = {
                "hnsw": {**summarize(hnsw_times), **cpu},
                "exact": exact_summary,
                "recall_at_10": statistics.fmean(recalls),
                "min_recall_at_10": min(recalls),
                "min_rows": min(counts),
                "plan": explain(model_id, queries[0]),
            }
    results["credit-shadow"]["rows_without_iterative_scan"] = rows_without_iterative_scan(queries)
    return results


def rows_without_iterative_scan(queries):
    """The filtered model without the iterative scan: the index stops after ef_search
    candidates, so fewer than k rows come back."""
    from django.db import connection, transaction

    found = []
    for vector in queries:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL hnsw.iterative_scan = off")
            cursor.execute(
                "SELECT count(*) FROM (SELECT id FROM records_predictionrecord "
                "WHERE model_id = 'credit-shadow' "
                f"ORDER BY {HALF_EMBEDDING} <=> %s::halfvec(384) LIMIT 10) t",
                ["[" + ",".join(f"{v:.6f}" for v in vector) + "]"],
            )
            found.append(cursor.fetchone()[0])
    return statistics.fmean(found)


def bench_backfill(rng):
    """A BACKFILL_ROWS-row CSV through `backfill_records`. The external ids are new on every run, so
    a run on the shared records (which keeps what it imported) imports rather than skips."""
    rows = synthetic_rows(BACKFILL_ROWS, rng)
    seconds = backfill_import_seconds(rows, f"rb{time.time_ns():x}")
    return {"rows": BACKFILL_ROWS, "seconds": seconds, "rows_per_second": BACKFILL_ROWS / seconds}


def backfill_measured(shared):
    """The back-fill section's import when it was measured on this same shared set (`make
    bench` runs backfill_bench.py just before): the same 5,000-row CSV into the same table, so
    it is not measured twice. None otherwise (this script measures its own)."""
    try:
        raw = json.loads((RESULTS_DIR / "backfill_bench.json").read_text())
    except (OSError, ValueError):
        return None
    measured_on = (raw.get("shared_records") or {}).get("built_at")
    if measured_on != str(shared["built_at"]) or "small" not in raw:
        return None
    return {**raw["small"], "measured_by": "backfill_bench"}


def bench_size(queries, raw_key, rng, loading, backfill=None):
    exact = exact_neighbours(queries)
    warm_up = nearest_warm_up()
    nearest = {ef: bench_nearest(queries, ef, exact) for ef in EF_SEARCH_VALUES}
    listing = bench_records_list(raw_key)
    sizes = storage()  # before the back-fill, which adds its rows
    backfill = backfill or bench_backfill(rng)
    return {
        "loading": loading,
        "nearest_warm_up": warm_up,
        "nearest": nearest,
        "records_list": listing,
        "backfill": backfill,
        "storage": sizes,
    }


LIST_QUERIES = (
    ("newest", ""),
    ("model + label", "?model_id=credit-default&risk_label=high"),
    ("model + score range", "?model_id=credit-shadow&min_score=0.5&max_score=0.9"),
)
LIST_CALLS = 60


def bench_records_list(raw_key):
    """`GET /api/v1/records/` per filter: the first page and the page its `next` cursor
    names, and, as the baseline in the same run, the page-number pagination it replaced
    (`count(*)`, then the page). Wall time and CPU per request (this process and its
    PostgreSQL backend), and EXPLAIN (ANALYZE, BUFFERS) of each page's query."""
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    results, plans = {}, {}
    for label, query in LIST_QUERIES:
        first = f"/api/v1/records/{query}"
        following = client.get(first).json()["next"]
        assert following, f"{label}: one page only"
        results[label] = {
            "page number (before)": _page_number_timed(client, first),
            "first page": _list_timed(client, first),
            "following page": _list_timed(client, following),
        }
        plans[label] = {
            "first page": list_plans(client, first),
            "following page": list_plans(client, following),
        }
    results["plans"] = plans
    return results


def _list_timed(client, url):
    def listing():
        response = client.get(url)
        assert response.status_code == 200, response.content

    listing()  # opens the connection, so its backend is the one measured
    samples, cpu = cpu_per_call(
        lambda: time_calls(listing, repeat=LIST_CALLS, warmup=5), LIST_CALLS + 5
    )
    return {**summarize(samples), **cpu}


def _page_number_timed(client, url):
    """The same first page under core.pagination.PagePagination, as the list answered before."""
    from core.pagination import PagePagination
    from records.api.views import RecordViewSet

    keyset = RecordViewSet.pagination_class
    RecordViewSet.pagination_class = PagePagination
    try:
        return _list_timed(client, url)
    finally:
        RecordViewSet.pagination_class = keyset


def list_plans(client, url):
    """EXPLAIN (ANALYZE, BUFFERS) of the SQL the list request sends for the page, as text and
    in brief (index, rows read, buffers, time)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        client.get(url)
    [page_sql] = [q["sql"] for q in captured.captured_queries if "records_prediction" in q["sql"]]
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {page_sql}")
        text = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {page_sql}")
        plan = cursor.fetchone()[0][0]
    return {"text": text, **_plan_brief(plan)}


def _plan_brief(plan):
    """The scan under the LIMIT: its index, rows it returned and filtered out, buffers."""
    node = plan["Plan"]
    while "Index Name" not in node and "Relation Name" not in node and node.get("Plans"):
        node = node["Plans"][0]
    return {
        "node": node["Node Type"],
        "index": node.get("Index Name"),
        "rows_returned": node["Actual Rows"],
        "rows_filtered_out": node.get("Rows Removed by Filter", 0),
        "buffers": node.get("Shared Hit Blocks", 0) + node.get("Shared Read Blocks", 0),
        "buffers_read": node.get("Shared Read Blocks", 0),
        "execution_ms": plan["Execution Time"],
    }


def storage():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('shared_buffers'), "
            f"pg_size_pretty(pg_relation_size('{HNSW_INDEX}')), "
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

    rng = np.random.default_rng(SEED)
    total_started = time.perf_counter()
    model_version = ensure_model()
    shared = records_shared()
    # Predictions are stored into the shared records, as into a live table of that size.
    predict = bench_predict(model_version)
    print("predict done", {k: round(v["median_us"]) for k, v in predict.items()}, flush=True)
    queries = query_embeddings(QUERIES)
    per_size = {}
    with records_sized():
        backfill_empty = bench_backfill(rng)
        print("backfill on an empty table done", backfill_empty, flush=True)
        for count in SMALLER_SIZES:
            loading = records_load(model_version, rng, count)
            print(count, "load done", loading, flush=True)
            per_size[count] = bench_size(queries, bench_predict.raw_key, rng, loading)
            print(count, "done", per_size[count]["backfill"], flush=True)
    loading = {key: shared[key] for key in ("load_seconds", "index_seconds")}
    per_size[SHARED_RECORDS] = bench_size(
        queries, bench_predict.raw_key, rng, loading, backfill_measured(shared)
    )
    print(SHARED_RECORDS, "done", per_size[SHARED_RECORDS]["backfill"], flush=True)
    built = "in this run"
    if not shared["built_now"]:
        built = f"at {shared['built_at']:%Y-%m-%d %H:%M} UTC"
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
        "HNSW on the embedding in half precision (`embedding::halfvec(384)`, cosine, m=16, "
        "ef_construction=64; records/0007) built after the load. Queries filter by model "
        "with `hnsw.iterative_scan = relaxed_order`; recall@10 against an exact sequential scan, "
        "counting ties (a hit is no farther than the exact 10th). Before the measured "
        f"queries, {WARM_UP_QUERIES} searches for other applicants per model (the warm-up "
        "rows: the first searches after the load and the exact scans, the index not yet in "
        "shared_buffers). CPU per search: this process + its PostgreSQL backend.",
        "",
        "| rows | load s | index build s | model (share) | ef_search | HNSW median | HNSW p95 "
        "| CPU ms (Python + PostgreSQL) | exact median | recall@10 (min) |",
        "| ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for count, result in per_size.items():
        for model_id, warm_up in result["nearest_warm_up"].items():
            lines.append(
                f"| {count:,} | | | `{model_id}` | warm-up, {settings_ef_search()} "
                f"| {ms(warm_up, 'median_us')} | {ms(warm_up, 'p95_us')} | | | |"
            )
    for count, result in per_size.items():
        for ef, nearest in result["nearest"].items():
            for model_id, share in (("credit-default", 0.9), ("credit-shadow", 0.1)):
                found = nearest[model_id]
                hnsw = found["hnsw"]
                lines.append(
                    f"| {count:,} | {result['loading']['load_seconds']:.0f} "
                    f"| {result['loading']['index_seconds']:.0f} | `{model_id}` ({share:.0%}) "
                    f"| {ef} | {ms(found['hnsw'], 'median_us')} | {ms(found['hnsw'], 'p95_us')} "
                    f"| {hnsw['python_cpu_ms']:.1f} + {hnsw['postgres_cpu_ms']:.1f} "
                    f"| {ms(found['exact'], 'median_us')} "
                    f"| {found['recall_at_10']:.3f} ({found['min_recall_at_10']:.1f}) |"
                )
    lines += [
        "",
        f"| rows | back-fill rows/s ({BACKFILL_ROWS:,}-row CSV) | table / HNSW index "
        "| shared_buffers |",
        "| ---: | ---: | --- | --- |",
    ]
    for count, result in per_size.items():
        sizes = result["storage"]
        lines.append(
            f"| {count:,} | **{result['backfill']['rows_per_second']:,.0f}**"
            + (" (back-fill section)" if result["backfill"].get("measured_by") else "")
            + f" | {sizes['table_size']} / {sizes['index_size']} | {sizes['shared_buffers']} |"
        )
    lines += [
        "",
        f"### `GET /api/v1/records/` per table size ({LIST_CALLS} calls each, ms)",
        "",
        "DRF test client in-process, API key, 50 a page. Cursor pagination (core/pagination."
        "KeysetPagination): the first page, then the page its `next` cursor names. The baseline, "
        "in the same run: the page-number pagination it replaced (core/pagination.PagePagination:"
        " `count(*)`, then the page). CPU per request: this Python process + its PostgreSQL "
        "backend (/proc, 10 ms ticks over all calls).",
        "",
        "| rows | filter | page number before: median / p95 | cursor, first page: median / p95 "
        "| following page: median / p95 | CPU ms per request (Python + PostgreSQL): before / "
        "first / following | page plan at this size (following page) |",
        "| ---: | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for count, result in per_size.items():
        listing = result["records_list"]
        for label, _query in LIST_QUERIES:
            timed = listing[label]
            brief = listing["plans"][label]["following page"]
            lines.append(
                f"| {count:,} | {label} | "
                + " | ".join(
                    f"{ms(timed[page], 'median_us')} / {ms(timed[page], 'p95_us')}"
                    for page in ("page number (before)", "first page", "following page")
                )
                + " | "
                + " / ".join(
                    f"{timed[page]['python_cpu_ms']:.1f} + {timed[page]['postgres_cpu_ms']:.1f}"
                    for page in ("page number (before)", "first page", "following page")
                )
                + f" | `{brief['index']}`: {brief['rows_returned']} rows read, "
                f"{brief['rows_filtered_out']:,} filtered out, {brief['buffers']} buffers, "
                f"{brief['execution_ms']:.2f} ms |"
            )
    plans = per_size[SHARED_RECORDS]["records_list"]["plans"]
    lines += [
        "",
        f"Each filter's following page at {SHARED_RECORDS:,} rows, as the list sends it "
        "(EXPLAIN (ANALYZE, BUFFERS)): one range of an index, `(created_at, id) < (cursor)`, that "
        "stops after 51 matching rows (the page and one to know whether there is a next), "
        "whatever the depth and the table size:",
        "",
        "```",
        *"\n\n".join(
            f"-- {label}\n{plans[label]['following page']['text']}" for label, _ in LIST_QUERIES
        ).splitlines(),
        "```",
    ]
    lines += [
        "",
        f"Back-fill into an empty table: **{backfill_empty['rows_per_second']:,.0f} rows/s**. "
        "The shadow model's "
        "rows without the iterative scan: "
        + ", ".join(
            f"{count:,} rows: {shadow_rows(result):.1f} of {K}"
            for count, result in per_size.items()
        )
        + f". The {SHARED_RECORDS:,} rows are the shared bench records (bench/dataset.py), "
        + f"loaded {built}"
        + f", with {shared['extra_rows']:,} records other benchmarks added since (and the "
        "predictions above); smaller sizes are loaded in a schema of their own. Whole run: "
        f"{total:.0f} s.",
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
