"""Named lists and policies over the API (`/api/v1/lists/`, `/api/v1/policies/`), through the
same services the admin uses (validation, version bumps, the audit trail).

Its own module: the rules API's serializers and views are long enough; these two resources are
small and read alike (a PUT on the natural key creates or replaces).
"""

from typing import Any

from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import serializers, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from core.access import Scope
from core.permissions import ScopeRequired
from core.serializers import StrictSerializer
from decisions import selectors, services
from decisions.models import IDENTIFIER_PATTERN, NamedList, Policy
from decisions.services.lists import MAX_LIST_VALUE_LENGTH, MAX_LIST_VALUES

PROBLEM = OpenApiResponse(description="Problem details (RFC 9457).")
MAX_PRECEDENCE = 50


@extend_schema_field(
    {"oneOf": [{"type": "string", "maxLength": MAX_LIST_VALUE_LENGTH}, {"type": "number"}]}
)
class ListValueField(serializers.Field):
    """A list value as JSON gives it: text, or a number for integer and double lists."""

    default_error_messages = {"invalid": "Must be a string or a number."}

    def to_internal_value(self, data: Any) -> str:
        if isinstance(data, bool) or not isinstance(data, str | int | float):
            self.fail("invalid")
        return str(data)

    def to_representation(self, value: Any) -> Any:
        return value


class NamedListSerializer(serializers.ModelSerializer):
    size = serializers.IntegerField(source="item_count", read_only=True)

    class Meta:
        model = NamedList
        fields = ["name", "description", "value_type", "version", "size", "updated_at"]


class NamedListDetailSerializer(NamedListSerializer):
    values = serializers.ListField(child=ListValueField(), read_only=True)

    class Meta(NamedListSerializer.Meta):
        fields = [*NamedListSerializer.Meta.fields, "values"]


class NamedListWriteSerializer(StrictSerializer):
    value_type = serializers.ChoiceField(
        choices=NamedList.ValueType.choices, default=NamedList.ValueType.STRING
    )
    description = serializers.CharField(max_length=2000, allow_blank=True, default="")
    values = serializers.ListField(
        child=ListValueField(),
        max_length=MAX_LIST_VALUES,
        help_text="Each value must be of the list's value_type (checked beyond the schema: a "
        "value that is not is refused with 400, naming its line).",
    )


class PolicySerializer(serializers.ModelSerializer):
    class Meta:
        model = Policy
        fields = [
            "event_type",
            "strategy",
            "default_outcome",
            "outcome_precedence",
            "requires_approval",
            "updated_at",
        ]


@extend_schema_field(
    {
        "type": "array",
        "items": {"type": "string", "pattern": IDENTIFIER_PATTERN, "maxLength": 32},
        "maxItems": MAX_PRECEDENCE,
        "uniqueItems": True,
    }
)
class PrecedenceField(serializers.ListField):
    """Outcomes, most severe first, each once (policy_validate refuses a repeat)."""


class PolicyWriteSerializer(StrictSerializer):
    strategy = serializers.ChoiceField(choices=Policy.Strategy.choices)
    default_outcome = serializers.RegexField(IDENTIFIER_PATTERN, max_length=32)
    outcome_precedence = PrecedenceField(
        child=serializers.RegexField(IDENTIFIER_PATTERN, max_length=32),
        max_length=MAX_PRECEDENCE,
        default=list,
    )
    requires_approval = serializers.BooleanField(required=False)

    WRITTEN = ("strategy", "default_outcome", "outcome_precedence", "requires_approval")


LIST = {
    "name": "blocked_countries",
    "description": "Sanctioned countries.",
    "value_type": "string",
    "version": 4,
    "size": 3,
    "updated_at": "2026-11-22T09:30:00Z",
}
POLICY = {
    "event_type": "loan_application",
    "strategy": "collect",
    "default_outcome": "approve",
    "outcome_precedence": ["decline", "review", "approve"],
    "requires_approval": True,
    "updated_at": "2026-11-22T09:35:00Z",
}


class CatalogViewSet(viewsets.GenericViewSet):
    """What lists and policies share: read with rules:read, write (PUT the whole thing) with
    rules:write, addressed by their identifier, listed a page at a time."""

    permission_classes = [ScopeRequired]
    required_scopes = {
        "list": Scope.RULES_READ,
        "retrieve": Scope.RULES_READ,
        "update": Scope.RULES_WRITE,
    }
    lookup_value_regex = "[a-z][a-z0-9_]*"
    filter_backends: list = []

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


@extend_schema_view(
    list=extend_schema(
        summary="List named lists",
        description="Lists rules read as `lists.<name>`, with their size (values on the list's "
        "own page).",
        examples=[OpenApiExample("A page", response_only=True, value=LIST)],
    ),
    retrieve=extend_schema(
        summary="A named list and its values",
        responses={200: NamedListDetailSerializer, 404: PROBLEM},
        examples=[
            OpenApiExample("List", response_only=True, value={**LIST, "values": ["IR", "KP", "SY"]})
        ],
    ),
    update=extend_schema(
        summary="Create or replace a named list",
        description="Replaces the whole contents (distinct values, blanks dropped); a change "
        f"bumps the version, so decisions record which contents they saw. At most "
        f"{MAX_LIST_VALUES} values of at most {MAX_LIST_VALUE_LENGTH} characters; a value that "
        "is not of the list's type is named by its position (`Line n`, from 1).",
        request=NamedListWriteSerializer,
        responses={200: NamedListDetailSerializer, 400: PROBLEM, 409: PROBLEM},
        examples=[
            OpenApiExample(
                "Blocked countries",
                request_only=True,
                value={
                    "value_type": "string",
                    "description": "Sanctioned countries.",
                    "values": ["IR", "KP", "SY"],
                },
            ),
            OpenApiExample(
                "Saved", response_only=True, value={**LIST, "values": ["IR", "KP", "SY"]}
            ),
        ],
    ),
)
class NamedListViewSet(CatalogViewSet):
    """Named lists; they are emptied, never deleted, since published rules may read them."""

    serializer_class = NamedListSerializer
    lookup_field = "name"

    def get_queryset(self):
        return selectors.named_list_list()

    def retrieve(self, request: Request, name: str) -> Response:
        return Response(NamedListDetailSerializer(selectors.named_list_get(name=name)).data)

    def update(self, request: Request, name: str) -> Response:
        incoming = NamedListWriteSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        services.named_list_save(name=name, **incoming.validated_data, actor=request.user)
        return Response(NamedListDetailSerializer(selectors.named_list_get(name=name)).data)


@extend_schema_view(
    list=extend_schema(
        summary="List policies",
        description="Event types without a policy use the default: first_match, approve.",
        examples=[OpenApiExample("A page", response_only=True, value=POLICY)],
    ),
    retrieve=extend_schema(
        summary="An event type's policy",
        responses={200: PolicySerializer, 404: PROBLEM},
        examples=[OpenApiExample("Policy", response_only=True, value=POLICY)],
    ),
    update=extend_schema(
        summary="Create or change an event type's policy",
        description="`requires_approval` left out keeps its value; turning it off needs a "
        "person with the rule approver role (403 otherwise).",
        request=PolicyWriteSerializer,
        responses={200: PolicySerializer, 400: PROBLEM, 403: PROBLEM, 409: PROBLEM},
        examples=[
            OpenApiExample(
                "Collect",
                request_only=True,
                value={key: POLICY[key] for key in PolicyWriteSerializer.WRITTEN},
            ),
            OpenApiExample("Saved", response_only=True, value=POLICY),
        ],
    ),
)
class PolicyViewSet(CatalogViewSet):
    """Policies per event type."""

    serializer_class = PolicySerializer
    lookup_field = "event_type"

    def get_queryset(self):
        return selectors.policy_list()

    def retrieve(self, request: Request, event_type: str) -> Response:
        return Response(PolicySerializer(selectors.policy_get(event_type=event_type)).data)

    def update(self, request: Request, event_type: str) -> Response:
        incoming = PolicyWriteSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        policy = services.policy_save(
            event_type=event_type, **incoming.validated_data, actor=request.user
        )
        return Response(PolicySerializer(policy).data)
