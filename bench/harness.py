"""Shared plumbing for benchmarks: a dedicated database, timing statistics, result files.

Every benchmark runs against its own database (`bench_decisioning`, migrated on first use) so the
demo data and the test database are never touched. Results go to `bench/results/<name>.json`
(raw) and `docs/benchmarks/<name>.md` (the table the docs show); `bench/run_all.py` stitches the
sections into `docs/benchmarks.md`.
"""

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
SECTIONS_DIR = ROOT / "docs" / "benchmarks"


def setup_django() -> None:
    """Configure Django on the benchmark database, creating and migrating it when needed."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ["TEST_DATABASE_NAME"] = "bench_decisioning"
    import django

    django.setup()
    from django.db import connection

    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=True, serialize=False)


def summarize(samples_seconds: Iterable[float]) -> dict[str, float]:
    """Median, p95, p99 and mean of timings, in microseconds."""
    values = sorted(sample * 1e6 for sample in samples_seconds)
    if not values:
        return {"n": 0}

    def percentile(fraction: float) -> float:
        index = min(len(values) - 1, max(0, round(fraction * (len(values) - 1))))
        return values[index]

    return {
        "n": len(values),
        "median_us": statistics.median(values),
        "p95_us": percentile(0.95),
        "p99_us": percentile(0.99),
        "mean_us": statistics.fmean(values),
    }


def time_calls(function: Callable[[], Any], *, repeat: int, warmup: int = 10) -> list[float]:
    """Wall-clock seconds of each of `repeat` calls, after `warmup` untimed ones."""
    for _ in range(warmup):
        function()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        samples.append(time.perf_counter() - started)
    return samples


def machine_line() -> str:
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )


def write_section(name: str, *, title: str, markdown: str, raw: dict[str, Any]) -> None:
    """Write the raw JSON and the markdown section of one benchmark, and print the section."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    SECTIONS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / f"{name}.json").write_text(json.dumps(raw, indent=2, default=str))
    command = f"`.venv/bin/python bench/{name}.py`"
    section = f"## {title}\n\n{machine_line()}; reproduce with {command}.\n\n{markdown.strip()}\n"
    (SECTIONS_DIR / f"{name}.md").write_text(section)
    print(section)
