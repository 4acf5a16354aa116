"""OpenAPI pieces every app's API shares: the API-key scheme and problem-details responses."""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiExample, OpenApiResponse
from rest_framework import serializers

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
