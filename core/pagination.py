"""Page-number pagination that says what it takes: `page` from 1 (to a billion) and `page_size`
1 to 200, anything else refused with 400 naming the parameter (DRF would silently fall back to
its defaults)."""

import re
from typing import Any

from django.core.paginator import Paginator
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request

from core.errors import InvalidInput

_DIGITS = re.compile(r"[0-9]{1,18}")
MAX_PAGE = 1_000_000_000


class PagePagination(PageNumberPagination):
    """`?page=N&page_size=M` (at most 200 a page); a page past the last answers 404."""

    page_size_query_param = "page_size"
    max_page_size = 200
    last_page_strings = ()

    def get_page_number(self, request: Request, paginator: Paginator) -> int:
        return self._query_integer(request, self.page_query_param, maximum=MAX_PAGE) or 1

    def get_page_size(self, request: Request) -> int:
        size = self._query_integer(request, self.page_size_query_param, maximum=self.max_page_size)
        return size or self.page_size or 50

    def _query_integer(self, request: Request, name: str | None, *, maximum: int) -> int | None:
        raw = request.query_params.get(name) if name else None
        if raw is None:
            return None
        value = int(raw) if _DIGITS.fullmatch(raw) else 0
        if not 1 <= value <= maximum:
            raise InvalidInput(
                f"{name} must be an integer from 1 to {maximum}.",
                errors={str(name): [f"An integer from 1 to {maximum}."]},
            )
        return value

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            {
                "name": self.page_query_param,
                "required": False,
                "in": "query",
                "description": "A page number (1 is the first); past the last page: 404.",
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
            },
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": f"Results per page (default {self.page_size}).",
                "schema": {"type": "integer", "minimum": 1, "maximum": self.max_page_size},
            },
        ]
