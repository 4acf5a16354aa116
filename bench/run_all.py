"""Run every benchmark in bench/ and stitch their sections into docs/benchmarks.md."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKIP = {"__init__.py", "harness.py", "run_all.py", "http_urls.py", "http_settings.py"}


def main() -> int:
    scripts = sorted(path for path in (ROOT / "bench").glob("*.py") if path.name not in SKIP)
    failed = []
    for script in scripts:
        print(f"== {script.name}", flush=True)
        command = [sys.executable, str(script), *sys.argv[1:]]  # `--full` passes through
        if subprocess.run(command, cwd=ROOT, check=False).returncode != 0:
            failed.append(script.name)
    stitch()
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


def stitch() -> None:
    sections = sorted((ROOT / "docs" / "benchmarks").glob("*.md"))
    header = (
        "# Benchmarks\n\nMeasured on this project's development machines (2 cores). Every section "
        "names its machine, date, load and the command that reproduces it; comparisons use the "
        "peer's fastest documented path, measured in the same run. `make bench` regenerates "
        "every section at a size that finishes in minutes, `make bench-full` at full size; raw "
        "results go to bench/results/*.json. The summary is written by hand from the sections."
        "\n\n"
    )
    body = "\n".join(section.read_text() for section in sections)
    (ROOT / "docs" / "benchmarks.md").write_text(header + body)


if __name__ == "__main__":
    sys.exit(main())
