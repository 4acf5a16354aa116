"""django-filter pieces every app's lists share: datetimes the database can compare, and an API
filter backend that takes query parameters as literally as the OpenAPI document states them.

The HTML pages bind the same FilterSets to their forms, where an empty field means "any"; the API
refuses an empty or mistyped parameter with 400 naming it instead of silently ignoring it.
"""

import re
from datetime import UTC, datetime
from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django_filters.fields import IsoDateTimeField
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.request import Request

from core.errors import InvalidInput

# RFC 3339 date-time, what OpenAPI's `format: date-time` means: a date, a time and an offset.
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_BOOLEANS = ("true", "false")


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 datetime converted to UTC: PostgreSQL refuses offsets beyond ±15:59, which
    Python accepts up to ±23:59."""

    def to_python(self, value: Any) -> datetime | None:
        parsed = super().to_python(value)
        if parsed is None or parsed.tzinfo is None:
            return parsed
        try:
            return parsed.astimezone(UTC)
        except OverflowError:
            raise ValidationError("Outside the supported range of dates.", code="invalid") from None


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class IntegerFilter(django_filters.NumberFilter):
    """A whole number (an id), within a bigint: NumberFilter alone takes 1.5 and 1e50."""

    field_class = forms.IntegerField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", 2**63 - 1)
        super().__init__(*args, **kwargs)


class ApiFilterBackend(DjangoFilterBackend):
    """DjangoFilterBackend, strict: no empty values, booleans are `true` or `false`, datetimes
    carry their offset."""

    def filter_queryset(self, request: Request, queryset: QuerySet[Any], view: Any) -> Any:
        filterset_class = self.get_filterset_class(view, queryset)
        if filterset_class is not None:
            errors = {
                name: [problem]
                for name, declared in filterset_class.base_filters.items()
                for value in request.query_params.getlist(name)
                if (problem := _parameter_problem(declared, value))
            }
            if errors:
                raise InvalidInput("Invalid query parameters.", errors=errors)
        return super().filter_queryset(request, queryset, view)


def _parameter_problem(declared: django_filters.Filter, value: str) -> str | None:
    if value == "":
        return "Must not be empty (leave the parameter out instead)."
    if isinstance(declared, django_filters.BooleanFilter) and value not in _BOOLEANS:
        return "Must be true or false."
    if isinstance(declared, django_filters.IsoDateTimeFilter) and not _RFC3339.fullmatch(value):
        return "Must be an RFC 3339 date-time with an offset, e.g. 2026-11-23T15:00:00Z."
    return None
