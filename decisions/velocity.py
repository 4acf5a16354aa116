"""Velocity: aggregates over the earlier events that share a payload key with this one.

A policy declares them (`VelocityAggregate`: count / sum of a field / distinct count of a field,
keyed by a payload field, over a window); rules read them as `velocity.<name>`. They are
computed inside the decision's transaction, only for the names a live rule reads, counting the
events received strictly before this one, and stored on the decision so that replays and
backtests see the very same numbers.

The reads are one query per key field, served by an expression index on
`(type, payload ->> key, received_at)` that declaring an aggregate builds (concurrently, in a
worker). docs/adr/0011-velocity-expression-index.md says why an index rather than a per-key
counter table (bench/history_latency.py measures both). Removing the last aggregate on a key
drops its index again, so no event insert keeps paying for an index nothing reads.
"""

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from psycopg import sql

from decisions.models import Event, VelocityAggregate

_REFERENCE = re.compile(r"""\bvelocity\s*(?:\.\s*([A-Za-z_]\w*)|\[\s*["']([^"']+)["']\s*\])""")


def referenced_aggregates(source: str) -> list[str]:
    """Names of the aggregates a condition reads (`velocity.name` or `velocity["name"]`)."""
    return sorted({match[0] or match[1] for match in _REFERENCE.findall(source)})


def declared_names(*, event_type: str) -> set[str]:
    """The aggregates the event type's policy declares."""
    return set(
        VelocityAggregate.objects.filter(policy__event_type=event_type).values_list(
            "name", flat=True
        )
    )


def aggregates_declared(*, event_type: str) -> list[VelocityAggregate]:
    """Every aggregate the event type's policy declares, by name."""
    return list(VelocityAggregate.objects.filter(policy__event_type=event_type).order_by("name"))


def aggregates_named(*, event_type: str, names: Iterable[str]) -> list[VelocityAggregate]:
    wanted = sorted(set(names))
    if not wanted:
        return []
    return list(
        VelocityAggregate.objects.filter(policy__event_type=event_type, name__in=wanted).order_by(
            "name"
        )
    )


def _aggregate_column(aggregate: VelocityAggregate) -> sql.Composable:
    """One select-list entry: the aggregate over the rows inside its own window (one %s)."""
    in_window = sql.SQL("FILTER (WHERE received_at >= %s)")
    if aggregate.function == VelocityAggregate.Function.COUNT:
        return sql.SQL("count(*) {}").format(in_window)
    field = sql.Literal(aggregate.field)
    if aggregate.function == VelocityAggregate.Function.SUM:
        # CASE, not a bare cast: a text or missing amount counts as nothing rather than
        # failing the decision's transaction.
        return sql.SQL(
            "coalesce(sum(CASE WHEN jsonb_typeof(payload -> {field}) = 'number' "
            "THEN (payload ->> {field})::numeric END) {window}, 0)"
        ).format(field=field, window=in_window)
    return sql.SQL("count(DISTINCT payload ->> {field}) {window}").format(
        field=field, window=in_window
    )


def _plain(value: Any) -> int | float:
    # CEL compares int with int and double with double: counts stay int, sums become double.
    if isinstance(value, Decimal):
        return float(value)
    return int(value)


def velocity_values(
    *, event: Event, aggregates: Sequence[VelocityAggregate]
) -> dict[str, int | float]:
    """{name: value} of the aggregates over the events before `event` with the same key.

    An aggregate whose key field the event lacks (or holds null) is left out: a rule reading it
    is then an evaluation error in the trace, not a silent zero.
    """
    values: dict[str, int | float] = {}
    by_key: dict[str, list[VelocityAggregate]] = {}
    for aggregate in aggregates:
        if event.payload.get(aggregate.key_field) is not None:
            by_key.setdefault(aggregate.key_field, []).append(aggregate)
    received_at = event.received_at
    for key_field, group in by_key.items():
        columns = [_aggregate_column(aggregate) for aggregate in group]
        query = sql.SQL(
            "SELECT {columns} FROM decisions_event "
            "WHERE type = %s AND (payload ->> {key}) = "
            "(SELECT payload ->> {key} FROM decisions_event WHERE id = %s) "
            "AND received_at >= %s "
            # Strictly before this event: earlier received, or received together and inserted first.
            "AND (received_at < %s OR (received_at = %s AND id < %s))"
        ).format(columns=sql.SQL(", ").join(columns), key=sql.Literal(key_field))
        windows = [received_at - timedelta(seconds=aggregate.window_seconds) for aggregate in group]
        params: list[Any] = [
            *windows,
            event.type,
            event.pk,
            min(windows),
            received_at,
            received_at,
            event.pk,
        ]
        with connection.cursor() as cursor:
            cursor.execute(query.as_string(cursor.connection), params)
            row = cursor.fetchone()
        values.update(
            {aggregate.name: _plain(value) for aggregate, value in zip(group, row, strict=True)}
        )
    return values


VELOCITY_INDEX_PREFIX = "event_velocity_"


def velocity_index_name(key_field: str) -> str:
    name = f"{VELOCITY_INDEX_PREFIX}{key_field}_idx"
    if len(name) <= 63:  # PostgreSQL would truncate a longer one, and two keys could collide
        return name
    return f"{VELOCITY_INDEX_PREFIX}{hashlib.sha256(key_field.encode()).hexdigest()[:16]}_idx"


def velocity_index_ensure(*, key_field: str) -> None:
    """Build the expression index that serves aggregates keyed by `key_field`, if missing.

    CONCURRENTLY, so the events table keeps taking writes while it builds: hence in a worker in
    autocommit mode (it cannot run inside a transaction), never in the request.
    """
    statement = sql.SQL(
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON decisions_event "
        "(type, (payload ->> {key}), received_at)"
    ).format(name=sql.Identifier(velocity_index_name(key_field)), key=sql.Literal(key_field))
    with connection.cursor() as cursor:
        cursor.execute(statement.as_string(cursor.connection))


def velocity_indexes_sync() -> tuple[list[str], list[str]]:
    """Make the events table's velocity indexes match the declared key fields: build those
    missing, drop those no aggregate keys on any more (each index costs every event insert).

    Returns (built, dropped) index names. Concurrently, like `velocity_index_ensure`.
    """
    wanted = {
        velocity_index_name(key): key
        for key in VelocityAggregate.objects.values_list("key_field", flat=True).distinct()
    }
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'decisions_event' "
            "AND starts_with(indexname, %s)",
            [VELOCITY_INDEX_PREFIX],
        )
        existing = {name for (name,) in cursor.fetchall()}
    built = sorted(wanted.keys() - existing)
    for name in built:
        velocity_index_ensure(key_field=wanted[name])
    dropped = sorted(existing - wanted.keys())
    with connection.cursor() as cursor:
        for name in dropped:
            statement = sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {name}")
            cursor.execute(statement.format(name=sql.Identifier(name)).as_string(cursor.connection))
    return built, dropped


def velocity_for_history(
    *, event: Event, aggregates: Sequence[VelocityAggregate]
) -> Mapping[str, int | float] | None:
    """The values of `aggregates` (those the live rules read) for `event`, or None when there
    are none."""
    if not aggregates:
        return None
    return velocity_values(event=event, aggregates=aggregates)
