"""Shared plumbing for benchmarks: a dedicated database, timing statistics, result files.

Every benchmark runs against its own database (`bench_decisioning`, migrated on first use) so the
demo data and the test database are never touched. Results go to `bench/results/<name>.json`
(raw) and `docs/benchmarks/<name>.md` (the table the docs show); `bench/run_all.py` stitches the
sections into `docs/benchmarks.md`. `--full` (or BENCH_FULL=1) runs the full sizes of
`make bench-full`; without it each benchmark runs the sizes `make bench` can afford in minutes.
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


def full_size() -> bool:
    """True under `make bench-full` (`--full` or BENCH_FULL=1)."""
    return "--full" in sys.argv or os.environ.get("BENCH_FULL") == "1"


def setup_django() -> None:
    """Configure Django on the benchmark database, creating and migrating it when needed."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ["TEST_DATABASE_NAME"] = "bench_decisioning"
    import django

    django.setup()
    from django.db import connection

    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=True, serialize=False)


def percentile(sorted_values: list[float], fraction: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


def summarize(samples_seconds: Iterable[float]) -> dict[str, float]:
    """Median, p95, p99 and mean of timings, in microseconds."""
    values = sorted(sample * 1e6 for sample in samples_seconds)
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "median_us": statistics.median(values),
        "p95_us": percentile(values, 0.95),
        "p99_us": percentile(values, 0.99),
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


def time_interleaved(
    paths: dict[str, Callable[[], Any]], *, rounds: int, calls: int, warmup: int = 200
) -> dict[str, list[float]]:
    """Per-call seconds of each path, run in alternating rounds so load spikes hit all alike."""
    for function in paths.values():
        for _ in range(warmup):
            function()
    samples: dict[str, list[float]] = {name: [] for name in paths}
    clock = time.perf_counter
    for _ in range(rounds):
        for name, function in paths.items():
            bucket = samples[name]
            for _ in range(calls):
                started = clock()
                function()
                bucket.append(clock() - started)
    return samples


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return 0.0


def load_line() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.1f} / {five:.1f} / {fifteen:.1f} (1 / 5 / 15 min)"


def machine_line() -> str:
    return (
        f"{cpu_model()}, {os.cpu_count()} cores, {memory_gib():.0f} GiB, "
        f"Python {platform.python_version()}; measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{load_line()} at the end (the machine is shared with other work)"
    )


def write_section(name: str, *, title: str, markdown: str, raw: dict[str, Any]) -> None:
    """Write the raw JSON and the markdown section of one benchmark, and print the section."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    SECTIONS_DIR.mkdir(parents=True, exist_ok=True)
    mode = "full" if full_size() else "quick"
    raw = {
        "benchmark": name,
        "mode": mode,
        "machine": machine_line(),
        "measured_at": datetime.now(UTC).isoformat(),
        "load_average": os.getloadavg(),
        **raw,
    }
    (RESULTS_DIR / f"{name}.json").write_text(json.dumps(raw, indent=2, default=str))
    command = f"`.venv/bin/python bench/{name}.py{' --full' if mode == 'full' else ''}`"
    target = "make bench-full" if mode == "full" else "make bench"
    section = (
        f"## {title}\n\n{machine_line()}; {mode} size (`{target}`); reproduce with {command}."
        f"\n\n{markdown.strip()}\n"
    )
    (SECTIONS_DIR / f"{name}.md").write_text(section)
    print(section)
