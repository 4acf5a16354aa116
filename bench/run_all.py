"""Run every benchmark in bench/ and stitch their sections into docs/benchmarks.md.

The order matters: bench/dataset.py runs first and loads the shared bench records that the
records, back-fill, pages and history benchmarks reuse (anew when an earlier run added rows to
them); then backfill_bench (on the set alone) and records_bench (which takes the back-fill
figure at the shared size from it), which add a few thousand rows; then the others
in the alphabetical order the sections were measured in before. Each script's wall time is
printed, and the whole run's goes into the header of docs/benchmarks.md.
"""

import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIRST = ["dataset.py", "backfill_bench.py", "records_bench.py"]
# Plumbing, and hnsw_options.py: four index builds, run on its own when the index is in question.
SKIP = {
    "__init__.py",
    "harness.py",
    "hnsw_options.py",
    "run_all.py",
    "http_urls.py",
    "http_settings.py",
}


def scripts() -> list[Path]:
    found = {path.name: path for path in (ROOT / "bench").glob("*.py") if path.name not in SKIP}
    return [found[name] for name in FIRST] + [
        found[name] for name in sorted(found) if name not in FIRST
    ]


def main() -> int:
    failed = []
    times: list[tuple[str, float]] = []
    started = time.perf_counter()
    for script in scripts():
        print(f"== {script.name}", flush=True)
        command = [sys.executable, str(script), *sys.argv[1:]]  # `--full` passes through
        script_started = time.perf_counter()
        if subprocess.run(command, cwd=ROOT, check=False).returncode != 0:
            failed.append(script.name)
        times.append((script.name, time.perf_counter() - script_started))
        print(f"== {script.name}: {times[-1][1]:.0f} s", flush=True)
    total = time.perf_counter() - started
    print("\n| script | wall s |\n| --- | ---: |")
    for name, seconds in times:
        print(f"| {name} | {seconds:.0f} |")
    print(f"| **total** | **{total:.0f}** |")
    stitch(times, total)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


def stitch(times: list[tuple[str, float]], total: float) -> None:
    sections = sorted((ROOT / "docs" / "benchmarks").glob("*.md"))
    one, five, fifteen = os.getloadavg()
    full = "--full" in sys.argv
    per_script = ", ".join(f"{name.removesuffix('.py')} {seconds:.0f} s" for name, seconds in times)
    header = (
        "# Benchmarks\n\nMeasured on this project's development machines (2 cores). Every section "
        "names its machine, date, load and the command that reproduces it; comparisons use the "
        "peer's fastest documented path, measured in the same run. `make bench` regenerates "
        "every section at a size that finishes in minutes, `make bench-full` at full size; raw "
        "results go to bench/results/*.json. The summary is written by hand from the sections."
        "\n\n"
        f"Last `make {'bench-full' if full else 'bench'}`: **{total / 60:.1f} minutes** of wall "
        f"time ({total:.0f} s), finished {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load average "
        f"{one:.1f} / {five:.1f} / {fifteen:.1f} at the end; per script: {per_script}."
        "\n\n"
    )
    body = "\n".join(section.read_text() for section in sections)
    (ROOT / "docs" / "benchmarks.md").write_text(header + body)


if __name__ == "__main__":
    sys.exit(main())
