"""The kernel's own endpoint: who am I (lets an integrator check a new key)."""

from django.urls import path
from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from core.authentication import ApiClient


@extend_schema(
    summary="Who am I",
    description="The principal the request authenticated as: an API key or a session user.",
    responses=inline_serializer(
        "Principal",
        {"kind": serializers.ChoiceField(["api_key", "user"]), "name": serializers.CharField()},
    ),
    examples=[OpenApiExample("API key", value={"kind": "api_key", "name": "checkout-service"})],
    tags=["core"],
)
@api_view(["GET"])
@permission_classes([IsAuthenticated])
def whoami(request: Request) -> Response:
    if isinstance(request.user, ApiClient):
        return Response({"kind": "api_key", "name": request.user.api_key.name})
    return Response({"kind": "user", "name": request.user.get_username()})


urlpatterns = [path("whoami/", whoami, name="whoami")]
