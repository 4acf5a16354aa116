"""One row by what a caller named, or the domain error that says it is not there."""

from django.db.models import Model, QuerySet

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
