"""Read-modify-write of one row: lock it for the rest of the transaction, or say it is gone."""

from django.db.models import Model, QuerySet

from core.errors import DomainError


def row_lock[M: Model](rows: QuerySet[M], *, missing: DomainError) -> M:
    """The first row of `rows`, locked (SELECT … FOR UPDATE) until the caller's transaction ends;
    raises `missing` (usually a NotFound naming what was asked for) when there is none."""
    row = rows.select_for_update().first()
    if row is None:
        raise missing
    return row
