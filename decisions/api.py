"""Serializers and viewsets of this app, mounted under /api/v1/."""

from typing import Any

import django_filters
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from core.authentication import client_scope
from core.idempotency import HEADER, idempotent_response, request_fingerprint
from decisions import selectors, services
from decisions.models import (
    IDENTIFIER_PATTERN,
    RULE_KEY_PATTERN,
    Backtest,
    Decision,
    Rule,
    RuleVersion,
)

PROBLEM = OpenApiResponse(description="Problem details (RFC 9457).")
TRACE_EXAMPLE = [
    {
        "version_id": 12,
        "rule": "blocked-country",
        "version": 3,
        "status": "published",
        "priority": 10,
        "outcome": "decline",
        "result": "true",
        "us": 1.4,
        "decided": True,
    },
    {
        "version_id": 15,
        "rule": "high-amount",
        "version": 2,
        "status": "shadow",
        "priority": 20,
        "outcome": "review",
        "result": "error",
        "error": "EvaluationError: KeyError: 'amount'",
        "us": 2.1,
        "decided": False,
    },
]
DECISION_EXAMPLE = {
    "id": 981,
    "event_id": 1204,
    "event_type": "loan_application",
    "outcome": "decline",
    "matched_rule": {"key": "blocked-country", "version": 3},
    "shadow_outcome": "decline",
    "policy": {
        "event_type": "loan_application",
        "strategy": "first_match",
        "default_outcome": "approve",
        "precedence": ["decline", "review", "approve"],
    },
    "trace": TRACE_EXAMPLE,
    "lists_snapshot": {"blocked_countries": {"version": 4, "values": ["KP", "IR"]}},
    "actions": [],
    "engine_us": 18.6,
    "risk": None,
    "decided_at": "2026-11-23T15:04:05.123456Z",
}
IDEMPOTENCY_PARAMETER = OpenApiParameter(
    HEADER,
    location=OpenApiParameter.HEADER,
    required=True,
    description="Unique per request (e.g. a UUID): a retry with the same key and body answers "
    "the stored response with `Idempotent-Replayed: true`.",
)


# --- Events and decisions ----------------------------------------------------------------------


# A real applicant of the German Credit data (row 1), as the credit-default model expects it.
EXAMPLE_APPLICANT = {
    "checking_account": "... < 0 DM",
    "duration_months": 6,
    "credit_history": "critical account/ other credits existing (not at this bank)",
    "purpose": "radio/television",
    "credit_amount": 1169,
    "savings": "unknown/ no savings account",
    "employment_since": "... >= 7 years",
    "installment_rate": 4,
    "personal_status_sex": "male : divorced/separated",
    "other_debtors": "none",
    "residence_since": 4,
    "property": "real estate",
    "age": 67,
    "other_installment_plans": "none",
    "housing": "own",
    "existing_credits": 2,
    "job": "skilled employee / official",
    "dependents": 1,
    "telephone": True,
    "foreign_worker": True,
}


class RiskRequestSerializer(serializers.Serializer):
    model_id = serializers.CharField(max_length=64)
    features = serializers.DictField(required=False, default=dict)


class EventCreateSerializer(serializers.Serializer):
    type = serializers.RegexField(IDENTIFIER_PATTERN, max_length=64)
    payload = serializers.DictField()
    risk = RiskRequestSerializer(required=False, allow_null=True)


class MatchedRuleSerializer(serializers.Serializer):
    key = serializers.CharField()
    version = serializers.IntegerField()


class DecisionSummarySerializer(serializers.ModelSerializer):
    event_id = serializers.IntegerField(read_only=True)
    matched_rule = serializers.SerializerMethodField()

    class Meta:
        model = Decision
        fields = [
            "id",
            "event_id",
            "event_type",
            "outcome",
            "matched_rule",
            "shadow_outcome",
            "engine_us",
            "decided_at",
        ]

    def get_matched_rule(self, decision: Decision) -> dict[str, Any] | None:
        version = decision.matched_version
        if version is None:
            return None
        return {"key": version.rule.key, "version": version.number}


class DecisionSerializer(DecisionSummarySerializer):
    risk = serializers.SerializerMethodField()

    class Meta(DecisionSummarySerializer.Meta):
        fields = [
            *DecisionSummarySerializer.Meta.fields,
            "policy",
            "trace",
            "lists_snapshot",
            "actions",
            "risk",
        ]

    def get_risk(self, decision: Decision) -> dict[str, Any] | None:
        if decision.risk_score is None:
            return None
        return {
            "score": decision.risk_score,
            "label": decision.risk_label,
            "record_id": decision.risk_record_id,
        }


class EventSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    type = serializers.CharField()
    payload = serializers.JSONField()
    risk = serializers.JSONField(source="risk_request")
    idempotency_key = serializers.CharField()
    received_at = serializers.DateTimeField()


class DecisionDetailSerializer(DecisionSerializer):
    event = EventSerializer()

    class Meta(DecisionSerializer.Meta):
        fields = [*DecisionSerializer.Meta.fields, "event"]


class EventRegisteredSerializer(serializers.Serializer):
    event_id = serializers.IntegerField()
    decision = DecisionSerializer()


class ReplaySerializer(serializers.Serializer):
    decision_id = serializers.IntegerField()
    matches = serializers.BooleanField()
    differences = serializers.ListField(child=serializers.CharField())
    stored = serializers.JSONField()
    replayed = serializers.JSONField()


@extend_schema_view(
    create=extend_schema(
        summary="Register an event and decide it",
        parameters=[IDEMPOTENCY_PARAMETER],
        request=EventCreateSerializer,
        responses={201: EventRegisteredSerializer, 400: PROBLEM, 409: PROBLEM, 422: PROBLEM},
        examples=[
            OpenApiExample(
                "Loan application",
                request_only=True,
                value={
                    "type": "loan_application",
                    "payload": {"amount": 25000, "country": "DE", "age": 34},
                },
            ),
            OpenApiExample(
                "Scored with a risk model (rules read risk.score, risk.label)",
                request_only=True,
                value={
                    "type": "loan_application",
                    "payload": {"amount": 25000, "country": "DE", "phone": "+4915123456789"},
                    "risk": {"model_id": "credit-default", "features": EXAMPLE_APPLICANT},
                },
            ),
            OpenApiExample(
                "Decided",
                response_only=True,
                status_codes=["201"],
                value={"event_id": 1204, "decision": DECISION_EXAMPLE},
            ),
        ],
    )
)
class EventViewSet(viewsets.ViewSet):
    """Events in, decisions out: exactly one decision per Idempotency-Key."""

    permission_classes = [permissions.IsAuthenticated]

    def create(self, request: Request) -> Response:
        def produce() -> tuple[int, Any]:
            incoming = EventCreateSerializer(data=request.data)
            incoming.is_valid(raise_exception=True)
            decision = services.event_register(
                event_type=incoming.validated_data["type"],
                payload=incoming.validated_data["payload"],
                risk_request=incoming.validated_data.get("risk"),
                idempotency_key=request.headers[HEADER],
                client_scope=client_scope(request.user),
                fingerprint=request_fingerprint(
                    method="POST", path=request.path, body=request.data
                ),
            )
            body = EventRegisteredSerializer({"event_id": decision.event_id, "decision": decision})
            return status.HTTP_201_CREATED, body.data

        return idempotent_response(request, produce, required=True)


class DecisionFilter(django_filters.FilterSet):
    outcome = django_filters.CharFilter()
    event_type = django_filters.CharFilter()
    rule = django_filters.CharFilter(field_name="matched_version__rule__key", label="Rule key")
    decided_after = django_filters.IsoDateTimeFilter(field_name="decided_at", lookup_expr="gte")
    decided_before = django_filters.IsoDateTimeFilter(field_name="decided_at", lookup_expr="lt")

    class Meta:
        model = Decision
        fields = ["outcome", "event_type", "rule", "decided_after", "decided_before"]


@extend_schema_view(
    list=extend_schema(
        summary="List decisions",
        description="Newest first; filter by outcome, event type, matched rule and time range.",
        examples=[
            OpenApiExample(
                "A page",
                response_only=True,
                value={
                    "count": 1,
                    "next": None,
                    "previous": None,
                    "results": [
                        {
                            key: DECISION_EXAMPLE[key]
                            for key in DecisionSummarySerializer.Meta.fields
                        }
                    ],
                },
            )
        ],
    ),
    retrieve=extend_schema(
        summary="A decision with its trace and event",
        responses={200: DecisionDetailSerializer, 404: PROBLEM},
        examples=[
            OpenApiExample(
                "Decision",
                response_only=True,
                value={
                    **DECISION_EXAMPLE,
                    "event": {
                        "id": 1204,
                        "type": "loan_application",
                        "payload": {"amount": 25000, "country": "KP"},
                        "risk": None,
                        "idempotency_key": "9b1f7c2e-loan-1204",
                        "received_at": "2026-11-23T15:04:05.120001Z",
                    },
                },
            )
        ],
    ),
)
class DecisionViewSet(viewsets.ReadOnlyModelViewSet):
    """Stored decisions; replay re-evaluates one and compares."""

    permission_classes = [permissions.IsAuthenticated]
    lookup_value_regex = "[0-9]{1,18}"
    filterset_class = DecisionFilter
    ordering_fields = ["decided_at", "id"]
    ordering = ["-decided_at", "-id"]

    def get_queryset(self):
        return selectors.decision_list()

    def get_serializer_class(self):
        return DecisionSummarySerializer if self.action == "list" else DecisionDetailSerializer

    @extend_schema(
        summary="Replay a decision",
        description="Re-evaluates the stored event with the exact rule versions, list contents "
        "and policy recorded on the decision; nothing is written.",
        request=None,
        responses={200: ReplaySerializer, 404: PROBLEM},
        examples=[
            OpenApiExample(
                "Reproduced",
                response_only=True,
                value={
                    "decision_id": 981,
                    "matches": True,
                    "differences": [],
                    "stored": {"outcome": "decline", "matched_version_id": 12},
                    "replayed": {
                        "outcome": "decline",
                        "matched_version_id": 12,
                        "shadow_outcome": "decline",
                        "trace": TRACE_EXAMPLE,
                        "engine_us": 11.2,
                    },
                },
            )
        ],
    )
    @action(detail=True, methods=["post"])
    def replay(self, request: Request, pk: str | None = None) -> Response:
        decision = selectors.decision_get(decision_id=int(pk or 0))
        return Response(ReplaySerializer(services.decision_replay(decision=decision)).data)


# --- Rules -------------------------------------------------------------------------------------


class RuleVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = RuleVersion
        fields = [
            "number",
            "status",
            "condition",
            "outcome",
            "priority",
            "actions",
            "effective_from",
            "effective_until",
            "list_names",
            "author_label",
            "change_note",
            "created_at",
            "status_changed_at",
        ]
        read_only_fields = fields


class RuleSerializer(serializers.ModelSerializer):
    published_version = serializers.SerializerMethodField()
    shadow_version = serializers.SerializerMethodField()
    versions = RuleVersionSerializer(many=True, read_only=True)

    class Meta:
        model = Rule
        fields = [
            "key",
            "name",
            "description",
            "event_type",
            "created_at",
            "published_version",
            "shadow_version",
            "versions",
        ]

    def get_published_version(self, rule: Rule) -> int | None:
        return rule.number_with(RuleVersion.Status.PUBLISHED)

    def get_shadow_version(self, rule: Rule) -> int | None:
        return rule.number_with(RuleVersion.Status.SHADOW)


class RuleCreateSerializer(serializers.Serializer):
    key = serializers.RegexField(RULE_KEY_PATTERN, max_length=64)
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(max_length=4000, required=False, allow_blank=True)
    event_type = serializers.RegexField(IDENTIFIER_PATTERN, max_length=64)


class RuleVersionCreateSerializer(serializers.Serializer):
    condition = serializers.CharField(max_length=4000, trim_whitespace=False)
    outcome = serializers.RegexField(IDENTIFIER_PATTERN, max_length=32)
    priority = serializers.IntegerField(min_value=-1_000_000, max_value=1_000_000)
    actions = serializers.JSONField(required=False, default=list)  # type: ignore[arg-type]
    effective_from = serializers.DateTimeField(required=False, allow_null=True, default=None)
    effective_until = serializers.DateTimeField(required=False, allow_null=True, default=None)
    change_note = serializers.CharField(max_length=2000, required=False, allow_blank=True)


RULE_EXAMPLE = {
    "key": "blocked-country",
    "name": "Applicant in a blocked country",
    "description": "Sanctioned countries are declined.",
    "event_type": "loan_application",
    "created_at": "2026-11-20T09:00:00Z",
    "published_version": 3,
    "shadow_version": None,
    "versions": [
        {
            "number": 3,
            "status": "published",
            "condition": "event.country in lists.blocked_countries",
            "outcome": "decline",
            "priority": 10,
            "actions": [],
            "effective_from": None,
            "effective_until": None,
            "list_names": ["blocked_countries"],
            "author_label": "staff",
            "change_note": "Use the shared list.",
            "created_at": "2026-11-22T10:00:00Z",
            "status_changed_at": "2026-11-22T10:05:00Z",
        }
    ],
}
VERSION_EXAMPLE = RULE_EXAMPLE["versions"][0]  # type: ignore[index]
CEL_ERROR_EXAMPLE = OpenApiExample(
    "CEL error",
    response_only=True,
    status_codes=["400"],
    value={
        "type": "https://decisioning.example/problems/invalid_expression",
        "title": "Invalid expression",
        "status": 400,
        "detail": "Syntax error: mismatched input '<EOF>' expecting ...",
        "code": "invalid_expression",
        "errors": {"condition": ["Syntax error: mismatched input '<EOF>' expecting ..."]},
        "line": 1,
        "column": 15,
    },
)


def _transition_schema(summary: str, description: str) -> Any:
    return extend_schema(
        summary=summary,
        description=description,
        request=None,
        responses={200: RuleVersionSerializer, 404: PROBLEM, 409: PROBLEM},
        examples=[OpenApiExample("Version", response_only=True, value=VERSION_EXAMPLE)],
    )


@extend_schema_view(
    list=extend_schema(
        summary="List rules with their versions",
        parameters=[OpenApiParameter("event_type", str, description="Only this event type.")],
        examples=[
            OpenApiExample(
                "A page",
                response_only=True,
                value={"count": 1, "next": None, "previous": None, "results": [RULE_EXAMPLE]},
            )
        ],
    ),
    retrieve=extend_schema(
        summary="A rule and its version history",
        responses={200: RuleSerializer, 404: PROBLEM},
        examples=[OpenApiExample("Rule", response_only=True, value=RULE_EXAMPLE)],
    ),
    create=extend_schema(
        summary="Create a rule",
        description="A rule is its stable key; add versions to give it a condition.",
        request=RuleCreateSerializer,
        responses={201: RuleSerializer, 400: PROBLEM, 409: PROBLEM},
        examples=[
            OpenApiExample(
                "New rule",
                request_only=True,
                value={
                    "key": "blocked-country",
                    "name": "Applicant in a blocked country",
                    "event_type": "loan_application",
                },
            ),
            OpenApiExample("Created", response_only=True, value={**RULE_EXAMPLE, "versions": []}),
        ],
    ),
)
class RuleViewSet(viewsets.GenericViewSet):
    """Rules and their immutable versions, for integrators (staff use the admin)."""

    permission_classes = [permissions.IsAuthenticated]
    serializer_class = RuleSerializer
    lookup_field = "key"
    lookup_value_regex = "[a-z][a-z0-9_-]*"
    filter_backends: list = []

    def get_queryset(self):
        return selectors.rule_list(event_type=self.request.query_params.get("event_type"))

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(RuleSerializer(page, many=True).data)

    def retrieve(self, request: Request, key: str) -> Response:
        return Response(RuleSerializer(selectors.rule_get(key=key)).data)

    def create(self, request: Request) -> Response:
        incoming = RuleCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        rule = services.rule_create(**incoming.validated_data, actor=request.user)
        return Response(RuleSerializer(selectors.rule_get(key=rule.key)).data, status=201)

    @extend_schema(
        summary="Add a draft version",
        description="The CEL condition is compiled now; a syntax error or an unknown variable "
        "is answered 400 with its line and column. Conditions read event, event_type, now, "
        "lists and risk.",
        request=RuleVersionCreateSerializer,
        responses={201: RuleVersionSerializer, 400: PROBLEM, 404: PROBLEM},
        examples=[
            OpenApiExample(
                "Draft",
                request_only=True,
                value={
                    "condition": "event.amount > 50000 && !(event.customer_id in lists.trusted)",
                    "outcome": "review",
                    "priority": 30,
                    "actions": [
                        {
                            "type": "sms",
                            "template": "We are reviewing your application.",
                            "to": "event.phone",
                        }
                    ],
                    "change_note": "Large loans from unknown customers get a human look.",
                },
            ),
            OpenApiExample(
                "Created", response_only=True, status_codes=["201"], value=VERSION_EXAMPLE
            ),
            CEL_ERROR_EXAMPLE,
        ],
    )
    @action(detail=True, methods=["post"], url_path="versions")
    def versions(self, request: Request, key: str) -> Response:
        incoming = RuleVersionCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        version = services.rule_version_create(
            rule=selectors.rule_get(key=key), **incoming.validated_data, actor=request.user
        )
        return Response(RuleVersionSerializer(version).data, status=201)

    def _transition(self, request: Request, key: str, number: str, change: Any) -> Response:
        version = selectors.rule_version_get(key=key, number=int(number))
        return Response(RuleVersionSerializer(change(version=version, actor=request.user)).data)

    @_transition_schema(
        "Publish a version",
        "A draft or shadow version goes live; the previously published version retires in the "
        "same transaction. Publishing a retired version is a 409 (roll back instead).",
    )
    @action(detail=True, methods=["post"], url_path=r"versions/(?P<number>[0-9]{1,9})/publish")
    def publish(self, request: Request, key: str, number: str) -> Response:
        return self._transition(request, key, number, services.rule_version_publish)

    @_transition_schema(
        "Shadow a version",
        "A draft runs on live traffic and is recorded in traces without deciding.",
    )
    @action(detail=True, methods=["post"], url_path=r"versions/(?P<number>[0-9]{1,9})/shadow")
    def shadow(self, request: Request, key: str, number: str) -> Response:
        return self._transition(request, key, number, services.rule_version_shadow)

    @_transition_schema("Retire a version", "The version stops running; this is final.")
    @action(detail=True, methods=["post"], url_path=r"versions/(?P<number>[0-9]{1,9})/retire")
    def retire(self, request: Request, key: str, number: str) -> Response:
        return self._transition(request, key, number, services.rule_version_retire)

    @_transition_schema(
        "Roll back to a version",
        "Publishes a copy of this version's content as a new version and answers that version.",
    )
    @action(detail=True, methods=["post"], url_path=r"versions/(?P<number>[0-9]{1,9})/rollback")
    def rollback(self, request: Request, key: str, number: str) -> Response:
        return self._transition(request, key, number, services.rule_version_rollback)


# --- Backtests ---------------------------------------------------------------------------------


class CandidateSerializer(serializers.Serializer):
    rule_key = serializers.RegexField(RULE_KEY_PATTERN, max_length=64)
    version = serializers.IntegerField(min_value=1, max_value=2_000_000_000)


class BacktestCreateSerializer(serializers.Serializer):
    rule_key = serializers.RegexField(RULE_KEY_PATTERN, max_length=64, required=False)
    version = serializers.IntegerField(min_value=1, max_value=2_000_000_000, required=False)
    candidates = CandidateSerializer(many=True, required=False)
    window_start = serializers.DateTimeField()
    window_end = serializers.DateTimeField()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        candidates = list(attrs.get("candidates") or [])
        if attrs.get("rule_key") or attrs.get("version"):
            if not (attrs.get("rule_key") and attrs.get("version")):
                raise serializers.ValidationError(
                    {"version": ["rule_key and version go together."]}
                )
            candidates.insert(0, {"rule_key": attrs["rule_key"], "version": attrs["version"]})
        if not candidates:
            raise serializers.ValidationError(
                {"candidates": ["Give rule_key and version, or candidates."]}
            )
        return {
            "candidates": candidates,
            "window_start": attrs["window_start"],
            "window_end": attrs["window_end"],
        }


class BacktestSerializer(serializers.ModelSerializer):
    progress = serializers.FloatField(read_only=True)

    class Meta:
        model = Backtest
        fields = [
            "id",
            "status",
            "candidates",
            "event_types",
            "window_start",
            "window_end",
            "total",
            "processed",
            "progress",
            "results",
            "error",
            "created_at",
            "finished_at",
        ]


BACKTEST_EXAMPLE = {
    "id": 7,
    "status": "completed",
    "candidates": [{"rule_key": "high-amount", "version": 4, "version_id": 31}],
    "event_types": ["loan_application"],
    "window_start": "2026-11-01T00:00:00Z",
    "window_end": "2026-11-23T00:00:00Z",
    "total": 1200,
    "processed": 1200,
    "progress": 1.0,
    "results": {
        "evaluated": 1200,
        "changed": 42,
        "unchanged": 1158,
        "candidate_errors": 0,
        "transitions": [
            {"from": "approve", "to": "review", "count": 42, "example_event_ids": [1031, 1077]}
        ],
    },
    "error": "",
    "created_at": "2026-11-23T15:00:00Z",
    "finished_at": "2026-11-23T15:00:02Z",
}


@extend_schema_view(
    create=extend_schema(
        summary="Backtest candidate versions",
        description="Evaluates the candidates (each replacing its rule's live version) against "
        "the stored events of the window, with the lists and policy each event was decided "
        "with. Small windows answer 201 with results; larger ones answer 202 and run in the "
        "background: poll the backtest for progress. Stored decisions never change.",
        request=BacktestCreateSerializer,
        responses={201: BacktestSerializer, 202: BacktestSerializer, 400: PROBLEM, 404: PROBLEM},
        examples=[
            OpenApiExample(
                "One draft",
                request_only=True,
                value={
                    "rule_key": "high-amount",
                    "version": 4,
                    "window_start": "2026-11-01T00:00:00Z",
                    "window_end": "2026-11-23T00:00:00Z",
                },
            ),
            OpenApiExample(
                "A candidate set",
                request_only=True,
                value={
                    "candidates": [
                        {"rule_key": "high-amount", "version": 4},
                        {"rule_key": "young-applicant", "version": 2},
                    ],
                    "window_start": "2026-11-01T00:00:00Z",
                    "window_end": "2026-11-23T00:00:00Z",
                },
            ),
            OpenApiExample("Result", response_only=True, value=BACKTEST_EXAMPLE),
        ],
    ),
    retrieve=extend_schema(
        summary="A backtest's status, progress and results",
        responses={200: BacktestSerializer, 404: PROBLEM},
        examples=[OpenApiExample("Result", response_only=True, value=BACKTEST_EXAMPLE)],
    ),
)
class BacktestViewSet(viewsets.GenericViewSet):
    """What a candidate rule set would have decided; read-only for stored decisions."""

    permission_classes = [permissions.IsAuthenticated]
    serializer_class = BacktestSerializer
    queryset = Backtest.objects.all()
    lookup_value_regex = "[0-9]{1,18}"
    filter_backends: list = []

    def create(self, request: Request) -> Response:
        incoming = BacktestCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        backtest = services.backtest_create(**incoming.validated_data, actor=request.user)
        finished = backtest.status == Backtest.Status.COMPLETED
        return Response(BacktestSerializer(backtest).data, status=201 if finished else 202)

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(BacktestSerializer(selectors.backtest_get(backtest_id=int(pk))).data)


router = SimpleRouter()
router.register("events", EventViewSet, basename="event")
router.register("decisions", DecisionViewSet, basename="decision")
router.register("rules", RuleViewSet, basename="rule")
router.register("backtests", BacktestViewSet, basename="backtest")

urlpatterns = router.urls
