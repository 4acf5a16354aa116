"""OpenAPI pieces every app's API shares: the API-key scheme, problem-details responses, the
Idempotency-Key header, and the schema class that documents every problem an operation can
answer (so no view has to list them)."""

from typing import Any

from django.core.validators import RegexValidator
from drf_spectacular.contrib.django_filters import DjangoFilterExtension
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse
from rest_framework import serializers

from core.filters import IntegerFilter
from core.idempotency import HEADER, KEY_PATTERN, MAX_KEY_LENGTH
from core.problems import PROBLEM_CONTENT_TYPE, problem_body


class SecuritySchemeExtension(OpenApiAuthenticationExtension):
    """An authentication class's entry in `components.securitySchemes`, stated as data."""

    security_definition: dict[str, Any] = {}

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return self.security_definition


class ApiKeyAuthenticationScheme(SecuritySchemeExtension):
    target_class = "core.authentication.ApiKeyAuthentication"
    name = "ApiKeyAuth"
    security_definition = {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": (
            "`Api-Key <key>`; create one with `manage.py create_api_key NAME --scope S`. "
            "Each operation names the scope it needs."
        ),
    }


class JwtAuthenticationScheme(SecuritySchemeExtension):
    target_class = "core.authentication.JwtAuthentication"
    name = "BearerJWT"
    security_definition = {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": (
            "A token from your identity provider (when JWT_ISSUER is configured); its "
            "space-separated `scope` claim grants the same scopes as an API key."
        ),
    }


class ProblemSerializer(serializers.Serializer):
    """RFC 9457 problem details: the shape of every 4xx and 5xx answer of the API."""

    # Documentation only: core.problems.problem_body writes the real ones.

    type = serializers.URLField(help_text="A stable URI per error code.")
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    code = serializers.CharField()
    # A declared field, not the serializer's `errors` property (DRF pops declared fields).
    errors = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Field name (dotted for nested fields) → messages.",
    )


def problem_example(
    name: str, *, status: int, code: str, title: str, detail: str, **extra: Any
) -> OpenApiExample:
    """An example problem, built by the same function that builds the real ones."""
    return OpenApiExample(
        name, value=problem_body(status=status, code=code, title=title, detail=detail, **extra)
    )


def problem_response(status: int, *examples: OpenApiExample) -> dict[Any, OpenApiResponse]:
    """`responses=` entry for a problem: `{**problem_response(404, example), 200: ...}`."""
    return {
        (status, PROBLEM_CONTENT_TYPE): OpenApiResponse(
            ProblemSerializer,
            description="Problem details (RFC 9457).",
            examples=list(examples),
        )
    }


def idempotency_key_parameter(*, required: bool = False) -> OpenApiParameter:
    """The Idempotency-Key header of an operation that honours it (its 409 and 422 follow)."""
    return OpenApiParameter(
        HEADER,
        {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_KEY_LENGTH,
            "pattern": KEY_PATTERN,
        },
        OpenApiParameter.HEADER,
        required=required,
        description=(
            f"1 to {MAX_KEY_LENGTH} printable ASCII characters, unique per request (e.g. a "
            "UUID). A retry with the same key and body answers the stored response again with "
            "`Idempotent-Replayed: true`; the same key with another body answers 422; the same "
            "key while the first request still runs answers 409."
        ),
    )


# Why an operation may answer each problem status; which apply is decided per operation below.
PROBLEM_STATUSES = {
    400: "Invalid input: `errors` names each field or parameter.",
    401: "No valid credentials (API key, bearer token or session).",
    403: "The credentials lack the scope (or the person the permission) this operation needs.",
    404: "No such resource (in the path or named by the body), or a page past the last.",
    409: "Conflicts with the current state (or a request with this Idempotency-Key is running).",
    413: "The request body is over the size limit.",
    415: "The request body's media type is not accepted.",
    422: "This Idempotency-Key was already used with another request body.",
    429: "Too many requests: retry after the `Retry-After` seconds.",
}
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def problem_statuses(*, method: str, operation: dict[str, Any]) -> list[int]:
    """The problem statuses an operation can answer, from what it takes and who may call it."""
    parameters = operation.get("parameters", [])
    locations = {parameter["in"] for parameter in parameters}
    names = {parameter["name"] for parameter in parameters}
    has_body = "requestBody" in operation
    statuses = {429}
    if operation.get("security") and {} not in operation["security"]:
        statuses |= {401, 403}
    if parameters or has_body:
        statuses.add(400)
    if "path" in locations or "page" in names or has_body:
        statuses.add(404)
    if has_body:
        statuses |= {413, 415}
    if method.upper() not in SAFE_METHODS:
        statuses.add(409)
    if HEADER in names:
        statuses |= {400, 409, 422}
    return sorted(statuses)


class ProblemAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema, plus every problem status the operation can answer,
    documented once here with the problem-details schema, and the text rule DRF applies."""

    def _map_serializer_field(self, field: Any, direction: Any, bypass_extensions: bool = False):
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        # DRF trims text before checking it is not blank: "  " is refused like "".
        if (
            direction == "request"
            and isinstance(field, serializers.CharField)
            and field.trim_whitespace
            and not field.allow_blank
            and schema.get("type") == "string"
            and not any(isinstance(check, RegexValidator) for check in field.validators)
        ):
            schema["pattern"] = r"\S"
        return schema

    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        if self.method == "POST" and "requestBody" in operation:
            # Every POST here needs its body (even one whose fields are each optional, such
            # as a backtest's, needs one of them): a missing body is refused with 400.
            operation["requestBody"]["required"] = True
        component = self.resolve_serializer(ProblemSerializer, "response")
        responses = operation.setdefault("responses", {})
        for status in problem_statuses(method=self.method, operation=operation):
            response = responses.setdefault(str(status), {})
            response.setdefault("description", PROBLEM_STATUSES[status])
            response.setdefault("content", {}).setdefault(
                PROBLEM_CONTENT_TYPE, {"schema": component.ref}
            )
        return operation


class StrictFilterExtension(DjangoFilterExtension):
    """The query parameters of core.filters.ApiFilterBackend, with the bounds the filters
    enforce (`max_length`, `min_value`, `max_value`) stated in the document."""

    target_class = "core.filters.ApiFilterBackend"
    priority = 1

    def resolve_filter_field(self, auto_schema, model, filterset_class, field_name, filter_field):
        parameters = super().resolve_filter_field(
            auto_schema, model, filterset_class, field_name, filter_field
        )
        bounds = {
            "max_length": "maxLength",
            "min_value": "minimum",
            "max_value": "maximum",
        }
        for parameter in parameters:
            schema = parameter["schema"]
            for extra, keyword in bounds.items():
                if filter_field.extra.get(extra) is not None:
                    schema[keyword] = filter_field.extra[extra]
            if isinstance(filter_field, IntegerFilter):
                schema["type"] = "integer"
            if schema.get("type") == "string":
                schema["minLength"] = 1  # the backend refuses an empty value
        return parameters
