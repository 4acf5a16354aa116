"""The review queue over the API (`/api/v1/reviews/`): list, read, claim, resolve.

Its own module beside `views` and `serializers`: the queue is a resource of its own, with its
own scopes (reviews:read, reviews:write), and keeps those modules from outgrowing a screen.
"""

from typing import Any

from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from core.access import Scope
from core.permissions import ScopeRequired
from core.serializers import StrictSerializer
from decisions import review_selectors, services
from decisions.models import ReviewCase
from decisions.services.reviews import MAX_NOTE_LENGTH

PROBLEM = OpenApiResponse(description="Problem details (RFC 9457).")


class ReviewCaseSerializer(serializers.ModelSerializer):
    decision_id = serializers.IntegerField(read_only=True)
    event_id = serializers.IntegerField(source="decision.event_id", read_only=True)
    event_type = serializers.CharField(source="decision.event_type", read_only=True)
    engine_outcome = serializers.CharField(source="decision.outcome", read_only=True)
    matched_rule = serializers.SerializerMethodField()
    claimed_by = serializers.CharField(source="claimed_by_label", read_only=True)
    claim_active = serializers.BooleanField(read_only=True)
    resolved_by = serializers.CharField(source="resolved_by_label", read_only=True)

    class Meta:
        model = ReviewCase
        fields = [
            "id",
            "decision_id",
            "event_id",
            "event_type",
            "engine_outcome",
            "matched_rule",
            "risk_score",
            "status",
            "opened_at",
            "claimed_by",
            "claimed_until",
            "claim_active",
            "resolution",
            "note",
            "resolved_by",
            "resolved_at",
        ]

    def get_matched_rule(self, case: ReviewCase) -> dict[str, Any] | None:
        version = case.decision.matched_version
        return None if version is None else {"key": version.rule.key, "version": version.number}


class ReviewQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=ReviewCase.Status.choices, default="open")
    ordering = serializers.ChoiceField(choices=["age", "risk"], default="age")


class ReviewResolveSerializer(StrictSerializer):
    resolution = serializers.ChoiceField(choices=ReviewCase.Resolution.choices)
    note = serializers.CharField(max_length=MAX_NOTE_LENGTH)


CASE = {
    "id": 41,
    "decision_id": 981,
    "event_id": 1204,
    "event_type": "loan_application",
    "engine_outcome": "review",
    "matched_rule": {"key": "high-amount", "version": 2},
    "risk_score": 0.71,
    "status": "open",
    "opened_at": "2026-11-23T15:04:05.200000Z",
    "claimed_by": "analyst",
    "claimed_until": "2026-11-23T15:19:05.200000Z",
    "claim_active": True,
    "resolution": "",
    "note": "",
    "resolved_by": "",
    "resolved_at": None,
}
RESOLVED = {
    **CASE,
    "status": "resolved",
    "claimed_until": None,
    "claim_active": False,
    "resolution": "decline",
    "note": "Income statement does not match the declared salary.",
    "resolved_by": "analyst",
    "resolved_at": "2026-11-23T15:11:40.000000Z",
}


@extend_schema_view(
    list=extend_schema(
        summary="The review queue",
        description="Open cases by default, oldest first (ties: riskiest); `ordering=risk` puts "
        "the riskiest first (ties: oldest); `status=resolved` lists resolved cases.",
        parameters=[
            OpenApiParameter("status", str, enum=["open", "resolved"], description="Default open."),
            OpenApiParameter("ordering", str, enum=["age", "risk"], description="Default age."),
        ],
        responses={200: ReviewCaseSerializer(many=True), 400: PROBLEM},
        examples=[OpenApiExample("A page", response_only=True, value=CASE)],
    ),
    retrieve=extend_schema(
        summary="A review case",
        responses={200: ReviewCaseSerializer, 404: PROBLEM},
        examples=[OpenApiExample("Case", response_only=True, value=CASE)],
    ),
)
class ReviewViewSet(viewsets.GenericViewSet):
    """Decisions the engine sent to review; the resolution is stored beside the decision."""

    permission_classes = [ScopeRequired]
    required_scopes = {
        "list": Scope.REVIEWS_READ,
        "retrieve": Scope.REVIEWS_READ,
        "claim": Scope.REVIEWS_WRITE,
        "resolve": Scope.REVIEWS_WRITE,
    }
    serializer_class = ReviewCaseSerializer
    lookup_value_regex = "[0-9]{1,18}"
    filter_backends: list = []

    def get_queryset(self):
        query = ReviewQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)  # an unknown status or ordering is a 400
        return review_selectors.review_case_list(**query.validated_data)

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(ReviewCaseSerializer(page, many=True).data)

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(
            ReviewCaseSerializer(review_selectors.review_case_get(case_id=int(pk))).data
        )

    @extend_schema(
        summary="Claim a case",
        description="The caller holds the case for DECISIONS_REVIEW_CLAIM_MINUTES (15 by "
        "default); claiming again extends it. 409 while another reviewer's claim runs, or once "
        "the case is resolved.",
        request=None,
        responses={200: ReviewCaseSerializer, 404: PROBLEM, 409: PROBLEM},
        examples=[OpenApiExample("Claimed", response_only=True, value=CASE)],
    )
    @action(detail=True, methods=["post"])
    def claim(self, request: Request, pk: str) -> Response:
        services.review_case_claim(case_id=int(pk), actor=request.user)
        return Response(
            ReviewCaseSerializer(review_selectors.review_case_get(case_id=int(pk))).data
        )

    @extend_schema(
        summary="Resolve a case",
        description="Approve or decline, with a note; stored beside the engine's decision "
        "(which never changes) and written to the audit trail. 409 while another reviewer's "
        "claim runs, or once the case is resolved.",
        request=ReviewResolveSerializer,
        responses={200: ReviewCaseSerializer, 400: PROBLEM, 404: PROBLEM, 409: PROBLEM},
        examples=[
            OpenApiExample(
                "Decline",
                request_only=True,
                value={"resolution": "decline", "note": RESOLVED["note"]},
            ),
            OpenApiExample("Resolved", response_only=True, value=RESOLVED),
        ],
    )
    @action(detail=True, methods=["post"])
    def resolve(self, request: Request, pk: str) -> Response:
        review_selectors.review_case_get(
            case_id=int(pk)
        )  # an unknown case is a 404 whatever the body
        incoming = ReviewResolveSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        services.review_case_resolve(case_id=int(pk), **incoming.validated_data, actor=request.user)
        return Response(
            ReviewCaseSerializer(review_selectors.review_case_get(case_id=int(pk))).data
        )
