"""Server time of the rule editor's pages with 100,000 decisions of one event type, and the plan
of the hits query (one grouped query on decision_event_type_idx).

`make bench` runs it; on its own: `.venv/bin/python bench/rule_pages.py` (BENCH_RULE_ROWS,
BENCH_RULE_REPEAT). It writes its section of docs/benchmarks.md.
"""

import os
import random
import time
import uuid
from datetime import timedelta

from harness import setup_django, summarize, time_calls, write_section
from ui_pages import ensure_decisions

ROWS = int(os.environ.get("BENCH_RULE_ROWS", "100000"))
REPEAT = int(os.environ.get("BENCH_RULE_REPEAT", "40"))
BATCH = 5000
EVENT_TYPE = "bench_loan"
SEED = 12


def ensure_rules_and_decisions(rng: random.Random) -> None:
    """Three rules (published, one with a canary and a draft) and ROWS decisions over 30 days,
    two thirds of them decided by one of the rules' versions."""
    from decisions import services
    from decisions.models import Rule, RuleVersion

    for key, condition in (
        ("bench-large", "event.amount > 8000"),
        ("bench-small", "event.amount < 100"),
        ("bench-round", "event.amount % 1000 == 0"),
    ):
        if Rule.objects.filter(key=key).exists():
            continue
        rule = services.rule_create(key=key, name=key, event_type=EVENT_TYPE)
        for outcome in ("review", "decline"):
            version = services.rule_version_create(
                rule=rule, condition=condition, outcome=outcome, priority=5
            )
        services.rule_version_publish(version=version)
        services.rule_version_create(rule=rule, condition=condition, outcome="review", priority=1)
    versions = list(
        RuleVersion.objects.filter(rule__event_type=EVENT_TYPE).values_list("pk", flat=True)
    )
    ensure_decisions(
        rng,
        event_type=EVENT_TYPE,
        rows=ROWS,
        outcomes=("approve", "review", "decline"),
        versions=(*versions, None, None),
    )


def main() -> None:
    setup_django()
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, setup_test_environment
    from django.utils import timezone

    from decisions.models import Decision
    from decisions.rule_selectors import rule_hits_over_time

    setup_test_environment()
    ensure_rules_and_decisions(random.Random(SEED))
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE decisions_decision")
    admin = User.objects.filter(username="bench-admin").first() or User.objects.create_superuser(
        username="bench-admin", password=uuid.uuid4().hex
    )
    client = Client()
    client.force_login(admin)
    pages = [
        ("Rules, hits over 24 hours", f"/rules/{EVENT_TYPE}/"),
        ("Rules, hits over 30 days", f"/rules/{EVENT_TYPE}/?range=30d"),
        ("Backtest form", f"/rules/backtests/new/?event_type={EVENT_TYPE}"),
    ]
    total = Decision.objects.filter(event_type=EVENT_TYPE).count()
    lines = [
        f"{total:,} decisions of {EVENT_TYPE}; {REPEAT} requests per page, in-process, signed in "
        "as an admin, server time.",
        "",
        "| page | URL | median ms | p95 ms | p95 < 200 ms |",
        "| --- | --- | ---: | ---: | --- |",
    ]
    measured = {}
    for name, url in pages:
        assert client.get(url).status_code == 200, url
        summary = summarize(time_calls(lambda url=url: client.get(url), repeat=REPEAT, warmup=3))
        measured[name] = summary
        p95 = summary["p95_us"] / 1000
        lines.append(
            f"| {name} | `{url}` | {summary['median_us'] / 1000:.1f} | {p95:.1f} | "
            f"{'yes' if p95 < 200 else '**no**'} |"
        )
    since = timezone.now() - timedelta(days=30)
    with CaptureQueriesContext(connection) as captured:
        rule_hits_over_time(event_type=EVENT_TYPE, since=since, bucket=timedelta(days=1))
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, COSTS OFF) {captured.captured_queries[0]['sql']}")
        plan = [line for (line,) in cursor.fetchall()]
    started = time.perf_counter()
    rule_hits_over_time(event_type=EVENT_TYPE, since=since, bucket=timedelta(days=1))
    hits_ms = 1000 * (time.perf_counter() - started)
    lines += [
        "",
        f"`rule_hits_over_time`, 30 days by day: {hits_ms:.1f} ms. Its plan, as it is sent:",
        "",
        "```",
        *plan,
        "```",
    ]
    write_section(
        "rule_pages",
        title="Rule pages: three rules and 100,000 decisions of their event type",
        markdown="\n".join(lines),
        raw={"decisions": total, "repeat": REPEAT, "pages": measured, "hits_ms": hits_ms},
    )


if __name__ == "__main__":
    main()
