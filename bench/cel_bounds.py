"""The worst rule CEL accepts, on the largest event payload the API accepts: how long it takes.

The bounds (core.expressions: 16 variable reads, one comprehension level with a 400-character
body; decisions.services: lists of 256 items, 2,000 values per payload) are meant to keep any
accepted expression within a few milliseconds. Baseline in the same run: one read of the
largest list.

Run: .venv/bin/python bench/cel_bounds.py
"""

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from core.expressions import (
    MAX_COMPREHENSION_BODY,
    MAX_VARIABLE_READS,
    build_context,
    compile_expression,
    evaluate,
)


def largest_payload() -> dict:
    items = [{f"v{j}": j for j in range(7)} for _ in range(250)]  # 1,750 values, 250 items
    return {"items": items, **{f"k{j}": j for j in range(240)}}  # 1,990 values in all


def worst_expression() -> str:
    clauses, body = [], ""
    for k in range(1000):
        candidate = " && ".join([*clauses, f"i.v{k % 7} != {k + 7}"])
        if len(candidate) > MAX_COMPREHENSION_BODY - 2:
            break
        clauses.append(f"i.v{k % 7} != {k + 7}")
        body = candidate
    reads = " && ".join(["size(payload.items) > 0"] * (MAX_VARIABLE_READS - 1))
    return f"payload.items.all(i, {body}) && {reads}"


def timed(source: str, context, rounds: int = 30) -> float:
    program = compile_expression(source, allowed_variables=["payload"])
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        evaluate(program, context)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


def main() -> None:
    context = build_context({"payload": largest_payload()})
    baseline = timed("size(payload.items) > 0", context)
    worst = timed(worst_expression(), context)
    print(
        f"one read of the largest list: {baseline:.3f} ms; worst accepted rule: {worst:.2f} ms "
        f"({worst / baseline:.0f}x); load average {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
