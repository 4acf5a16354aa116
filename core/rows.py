"""One row: read by what a caller named (or the domain error that says it is not there), or
inserted in one prepared statement."""

import functools
from typing import Any

from django.db import connection, connections, router
from django.db.models import Field, Model, QuerySet

from core.errors import DomainError


def row_get[M: Model](rows: QuerySet[M], *, missing: DomainError, for_update: bool = False) -> M:
    """The first row of `rows`, or raise `missing` (usually a NotFound naming what was asked).

    `for_update`: lock the row (SELECT … FOR UPDATE) until the caller's transaction ends, for a
    read-modify-write.
    """
    row = (rows.select_for_update() if for_update else rows).first()
    if row is None:
        raise missing
    return row


@functools.cache
def _insert_statement(model: type[Model], also_return: str) -> tuple[str, tuple[Field, ...]]:
    meta = model._meta
    quote = connection.ops.quote_name
    fields = tuple(field for field in meta.concrete_fields if not field.primary_key)
    columns = ", ".join(quote(str(field.column)) for field in fields)
    returning = ", ".join(
        filter(None, [quote(str(meta.pk.column if meta.pk else "id")), also_return])
    )
    statement = (
        f"INSERT INTO {quote(meta.db_table)} ({columns}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(fields))}) RETURNING {returning}"
    )
    return statement, fields


def row_insert(instance: Model, *, also_return: str = "") -> Any:
    """INSERT a new row as Model.save() would (each field's pre_save, then its prepared value),
    in a statement built once per model; sets the instance's primary key.

    For the per-event path, where save()'s per-call SQL compilation cost ~0.15 ms a row
    (bench/http_load.py). Only for models with an auto primary key and plain placeholders (no
    expressions, no pre-save signals: this sends none). `also_return`: an SQL expression of the
    code's own, never input, answered by the same round trip; its value is returned.
    """
    statement, fields = _insert_statement(type(instance), also_return)
    # The connection itself, not the `connection` proxy: each field reads it several times,
    # and every read through the proxy is a thread-local lookup.
    database = connections[router.db_for_write(type(instance))]
    values = [field.get_db_prep_save(field.pre_save(instance, True), database) for field in fields]
    with database.cursor() as cursor:
        cursor.execute(statement, values)
        answer = cursor.fetchone()
    instance.pk = answer[0]
    instance._state.adding = False
    instance._state.db = database.alias
    return answer[1] if also_return else None
