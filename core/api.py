"""The kernel's own endpoint: who am I, and what may I do (lets an integrator check a new key)."""

from typing import Any

from django.urls import path
from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import api_view, permission_classes
from rest_framework.request import Request
from rest_framework.response import Response

from core.access import ALL_SCOPES
from core.permissions import AnyCredential, principal_may
from core.principals import ApiClient


def _principal(request: Request) -> dict[str, Any]:
    user = request.user
    if isinstance(user, ApiClient):
        key = user.api_key
        return {
            "kind": "api_key" if key is not None else "token",
            "name": user.name,
            "scopes": sorted(user.scopes),
            "expires_at": key.expiry_date if key is not None else None,
            "last_used_at": key.last_used_at if key is not None else None,
        }
    return {
        "kind": "user",
        "name": user.get_username(),
        "scopes": sorted(scope for scope in ALL_SCOPES if principal_may(user, scope)),
        "expires_at": None,
        "last_used_at": None,
    }


@extend_schema(
    summary="Who am I",
    description=(
        "The principal the request authenticated as (an API key, a bearer token or a session "
        "user) and the scopes it holds. Any valid credential may ask, whatever its scopes."
    ),
    responses=inline_serializer(
        "Principal",
        {
            "kind": serializers.ChoiceField(["api_key", "token", "user"]),
            "name": serializers.CharField(),
            "scopes": serializers.ListField(child=serializers.ChoiceField(sorted(ALL_SCOPES))),
            "expires_at": serializers.DateTimeField(allow_null=True),
            "last_used_at": serializers.DateTimeField(allow_null=True),
        },
    ),
    examples=[
        OpenApiExample(
            "API key",
            value={
                "kind": "api_key",
                "name": "checkout-service",
                "scopes": ["decisions:read", "events:write"],
                "expires_at": None,
                "last_used_at": "2026-11-30T09:12:44Z",
            },
        )
    ],
    tags=["core"],
)
@api_view(["GET"])
@permission_classes([AnyCredential])
def whoami(request: Request) -> Response:
    return Response(_serialised(request))


def _serialised(request: Request) -> dict[str, Any]:
    principal = _principal(request)
    stamp = serializers.DateTimeField()
    for field in ("expires_at", "last_used_at"):
        if principal[field] is not None:
            principal[field] = stamp.to_representation(principal[field])
    return principal


urlpatterns = [path("whoami/", whoami, name="whoami")]
