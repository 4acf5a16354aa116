"""The API's two paginations, each saying what it takes and refusing anything else with 400
naming the parameter (DRF would silently fall back to its defaults, or answer 404 for a bad
cursor).

- `PagePagination`: `page` from 1 (to a billion) and `page_size` 1 to 200, with an exact `count`.
  For lists that stay small (rules, campaigns, contacts of a segment).
- `KeysetPagination`: an opaque `cursor` and `page_size` 1 to 200, no count. For lists that grow
  without bound (prediction records): a page costs the same at any depth and any table size,
  where a page number costs a `count(*)` of every matching row plus an OFFSET past the earlier
  pages.
"""

import base64
import binascii
import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import F, Model, QuerySet

# Django's row-value comparisons (what composite primary keys use): `(created_at, id) < (%s, %s)`
# is one index range condition, where `created_at < %s OR (created_at = %s AND id < %s)` makes
# PostgreSQL filter every row before the cursor.
from django.db.models.fields.tuple_lookups import Tuple, TupleGreaterThan, TupleLessThan
from rest_framework.pagination import (
    CursorPagination,
    PageNumberPagination,
    _reverse_ordering,
)
from rest_framework.request import Request
from rest_framework.utils.urls import remove_query_param, replace_query_param

from core.errors import InvalidInput

_DIGITS = re.compile(r"[0-9]{1,18}")
MAX_PAGE = 1_000_000_000
MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 50
# A cursor is base64url of a small JSON object; anything longer is not one of ours.
MAX_CURSOR_LENGTH = 512
BIGINT = 2**63


def query_integer(request: Request, name: str, *, maximum: int) -> int | None:
    """The query parameter `name` as an integer from 1 to `maximum`, None when absent."""
    raw = request.query_params.get(name)
    if raw is None:
        return None
    value = int(raw) if _DIGITS.fullmatch(raw) else 0
    if not 1 <= value <= maximum:
        raise InvalidInput(
            f"{name} must be an integer from 1 to {maximum}.",
            errors={name: [f"An integer from 1 to {maximum}."]},
        )
    return value


def _page_size_parameter(default: int | None) -> dict[str, Any]:
    return {
        "name": "page_size",
        "required": False,
        "in": "query",
        "description": f"Results per page (default {default or DEFAULT_PAGE_SIZE}).",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE},
    }


class PagePagination(PageNumberPagination):
    """`?page=N&page_size=M` (at most 200 a page); a page past the last answers 404."""

    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    last_page_strings = ()

    def get_page_number(self, request: Request, paginator: Paginator) -> int:
        return query_integer(request, self.page_query_param, maximum=MAX_PAGE) or 1

    def get_page_size(self, request: Request) -> int:
        size = query_integer(request, "page_size", maximum=MAX_PAGE_SIZE)
        return size or self.page_size or DEFAULT_PAGE_SIZE

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            {
                "name": self.page_query_param,
                "required": False,
                "in": "query",
                "description": "A page number (1 is the first); past the last page: 404.",
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
            },
            _page_size_parameter(self.page_size),
        ]


def _field(model: type[Model], name: str) -> Any:
    bare = name.lstrip("-")
    return model._meta.pk if bare == "pk" else model._meta.get_field(bare)


def _position_value(field: Any, text: str) -> Any:
    """One value of a cursor's position, as the database can compare it (a hand-made cursor
    could hold a naive or out-of-range time, or an id beyond bigint: 400, never a 500)."""
    try:
        value = field.to_python(text)
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise ValidationError("naive")
            value = value.astimezone(UTC)
    except (ValidationError, OverflowError):
        raise _bad_cursor("not a cursor this API issued") from None
    if isinstance(value, int) and not -BIGINT <= value < BIGINT:
        raise _bad_cursor("not a cursor this API issued")
    return value


def _bad_cursor(reason: str) -> InvalidInput:
    return InvalidInput(
        f"cursor is not valid: {reason}. Start again without it, then follow `next`.",
        errors={"cursor": [reason]},
    )


class _Keyset(NamedTuple):
    """A decoded cursor: the values of the ordering fields of the row to page after (or, with
    `reverse`, before)."""

    reverse: bool
    position: tuple[Any, ...]


class KeysetPagination(CursorPagination):
    """`?cursor=…&page_size=M`: the view's ordering field plus the primary key as the tie-break
    (same direction), and the cursor holds the last (or, going back, the first) row's values of
    both. A page is then `WHERE (field, pk) < (value, pk) ORDER BY field, pk LIMIT M + 1`: one
    range of an index on (field, pk), however deep the page and however large the table.

    DRF's own CursorPagination keeps only the first field in its cursor and skips the rows that
    tie with it by OFFSET, capped at 1,000: rows stored in one transaction (a back-fill) share
    their `created_at`, and paging through them would read ever more rows, then repeat pages.
    The ordering fields must be non-null (a NULL never compares).
    """

    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    ordering: tuple[str, ...] = ("-pk",)
    template = None
    keyset: _Keyset | None = None

    def paginate_queryset(
        self, queryset: QuerySet[Any] | Sequence[Any], request: Request, view: Any = None
    ) -> list[Any]:
        assert isinstance(queryset, QuerySet), "keyset pagination filters a queryset"
        if "page" in request.query_params:
            # A client written for page numbers would ask for page 2, 3, … and get the first
            # page every time, never a 404: tell it instead.
            raise InvalidInput(
                "This list pages by cursor: follow the `next` link (page_size sets its size).",
                errors={"page": ["Not accepted here: follow `next`."]},
            )
        self.request = request
        self.page_size = self.get_page_size(request)
        self.base_url = request.build_absolute_uri()
        self.ordering = self.get_ordering(request, queryset, view)
        self.keyset = self._cursor_decoded(request, queryset.model)
        reverse = self.keyset is not None and self.keyset.reverse
        ordering = _reverse_ordering(self.ordering) if reverse else self.ordering
        queryset = queryset.order_by(*ordering)
        if self.keyset is not None:
            columns = Tuple(*(F(name.lstrip("-")) for name in ordering))
            after = TupleLessThan if ordering[0].startswith("-") else TupleGreaterThan
            queryset = queryset.filter(after(columns, self.keyset.position))
        rows = list(queryset[: self.page_size + 1])
        more = len(rows) > self.page_size
        self.page = rows[: self.page_size]
        if reverse:
            self.page.reverse()
        # Going forward, rows lie before the page if a cursor brought us here; going back,
        # rows lie after it (the cursor's own row at least).
        self.has_next = more if not reverse else True
        self.has_previous = self.keyset is not None if not reverse else more
        return self.page

    def get_page_size(self, request: Request) -> int:
        size = query_integer(request, "page_size", maximum=MAX_PAGE_SIZE)
        return size or self.page_size or DEFAULT_PAGE_SIZE

    def get_ordering(self, request: Request, queryset: QuerySet[Any], view: Any) -> tuple[str, ...]:
        """The view's ordering field (from `?ordering=` or its default), then the pk."""
        first = super().get_ordering(request, queryset, view)[0]
        pk = queryset.model._meta.pk.name
        if first.lstrip("-") in ("pk", pk):
            return (first,)
        return (first, f"-{pk}" if first.startswith("-") else pk)

    def get_next_link(self) -> str | None:
        if not self.has_next or not self.page:
            return None
        return self._link(self.page[-1], reverse=False)

    def get_previous_link(self) -> str | None:
        if not self.has_previous:
            return None
        if not self.page:
            # Past the end (the rows after a cursor are gone): back to the first page.
            return remove_query_param(self._base_url, self.cursor_query_param)
        return self._link(self.page[0], reverse=True)

    def _link(self, row: Model, *, reverse: bool) -> str:
        fields = [_field(row.__class__, name) for name in self.ordering]
        assert all(getattr(row, f.attname) is not None for f in fields), "a NULL never compares"
        token = {
            "o": self.ordering[0],
            "p": [field.value_to_string(row) for field in fields],
            "r": reverse,
        }
        encoded = base64.urlsafe_b64encode(json.dumps(token, separators=(",", ":")).encode())
        # Without the padding, the cursor needs no escaping in a URL.
        cursor = encoded.decode("ascii").rstrip("=")
        return replace_query_param(self._base_url, self.cursor_query_param, cursor)

    @property
    def _base_url(self) -> str:
        assert self.base_url is not None, "set by paginate_queryset"
        return self.base_url

    def _cursor_decoded(self, request: Request, model: type[Model]) -> _Keyset | None:
        """The request's cursor (direction and position), None without one; 400 if it is not
        one this API issued for this ordering."""
        raw = request.query_params.get(self.cursor_query_param)
        if raw is None:
            return None
        try:
            if len(raw) > MAX_CURSOR_LENGTH:
                raise ValueError
            padded = raw + "=" * (-len(raw) % 4)
            token = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
            ordering, strings, reverse = token["o"], token["p"], token["r"]
        except (ValueError, TypeError, KeyError, UnicodeError, binascii.Error):
            raise _bad_cursor("not a cursor this API issued") from None
        if ordering != self.ordering[0]:
            raise _bad_cursor("issued for another ordering")
        if not (
            isinstance(reverse, bool)
            and isinstance(strings, list)
            and len(strings) == len(self.ordering)
            and all(isinstance(value, str) for value in strings)
        ):
            raise _bad_cursor("not a cursor this API issued")
        position = tuple(
            _position_value(_field(model, name), value)
            for name, value in zip(self.ordering, strings, strict=True)
        )
        return _Keyset(reverse=reverse, position=position)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": (
                    "Where the page starts: leave it out for the first page, then follow the "
                    "`next` (or `previous`) link, which carries it. Opaque; a cursor from another "
                    "`ordering`, or not issued by this API, answers 400."
                ),
                "schema": {"type": "string", "maxLength": MAX_CURSOR_LENGTH},
            },
            _page_size_parameter(self.page_size),
        ]
