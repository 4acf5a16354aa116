"""The worst rule CEL accepts, on the largest event payload the API accepts: how long it takes.

The bounds (core.expressions: 16 variable reads, one comprehension level with a 400-character
body; decisions.services: lists of 256 items, 2,000 values per payload) are meant to keep any
accepted expression within a few milliseconds. Baseline in the same run: one read of the
largest list.

Also: a membership test on the largest named list (10,000 values) as the set lookup rules
compile to, against the same test on a plain CEL list (which copies the list on each read).

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

MAX_LIST_VALUES = 10_000  # decisions.services.lists.MAX_LIST_VALUES (not imported: no Django)


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


def timed(source: str, context, rounds: int = 30, set_variable: str | None = None) -> float:
    variables = ["payload", "lists"]
    program = compile_expression(source, allowed_variables=variables, set_variable=set_variable)
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        evaluate(program, context)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


def _elapsed(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def main() -> None:
    context = build_context({"payload": largest_payload()})
    baseline = timed("size(payload.items) > 0", context)
    worst = timed(worst_expression(), context)
    print(
        f"one read of the largest list: {baseline:.3f} ms; worst accepted rule: {worst:.2f} ms "
        f"({worst / baseline:.0f}x); load average {os.getloadavg()[0]:.1f}"
    )
    values = [f"customer-{n}" for n in range(MAX_LIST_VALUES)]
    variables = {"payload": {"customer": values[-1]}, "lists": {"named": values}}
    membership = "payload.customer in lists.named"
    as_list = timed(membership, build_context(variables))
    # As the engine does: the lists variable holds only lists read whole, so not this one.
    only_payload = {"payload": variables["payload"]}
    as_set = timed(
        membership, build_context(only_payload, sets=variables["lists"]), set_variable="lists"
    )
    # The set is built on an event's first lookup: that first lookup, context included, against
    # building a context that holds the list as a CEL value (what every event paid before).
    with_list = (
        statistics.median(_elapsed(lambda: build_context(variables)) for _ in range(10)) * 1000
    )
    program = compile_expression(
        membership, allowed_variables=["payload", "lists"], set_variable="lists"
    )
    firsts = []
    for _ in range(30):
        started = time.perf_counter()
        evaluate(program, build_context(only_payload, sets=variables["lists"]))
        firsts.append(time.perf_counter() - started)
    first = statistics.median(firsts) * 1000
    print(
        f"membership in a list of {MAX_LIST_VALUES:,} values: {as_list * 1000:.1f} µs as a CEL "
        f"list, {as_set * 1000:.1f} µs as a set lookup ({as_list / as_set:.0f}x), "
        f"{first * 1000:.1f} µs for an event's first lookup (builds the set), against "
        f"{with_list * 1000:.1f} µs to put the list into a CEL context"
    )


if __name__ == "__main__":
    main()
