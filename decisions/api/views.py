"""Viewsets of the decisions API, mounted under /api/v1/: parse, call one service or selector,
answer one serializer."""

from collections.abc import Callable
from typing import Any

import django_filters
from django.http import HttpResponse
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.access import PeopleOnly, Scope
from core.authentication import client_scope
from core.filters import UtcIsoDateTimeFilter
from core.idempotency import HEADER, idempotent_response, request_fingerprint
from core.permissions import ScopeRequired, principal_may
from core.schema import idempotency_key_parameter
from core.serializers import input_validated
from decisions import privacy, replay_selectors, selectors, services
from decisions.api import examples
from decisions.api.serializers import (
    ApprovalNoteSerializer,
    BacktestCreateSerializer,
    BacktestSerializer,
    CanarySerializer,
    DecisionDetailSerializer,
    DecisionSummarySerializer,
    EventCreateSerializer,
    EventRegisteredSerializer,
    ReplaySerializer,
    RuleCreateSerializer,
    RuleSerializer,
    RuleVersionCreateSerializer,
    RuleVersionSerializer,
    VelocityAggregateCreateSerializer,
    VelocityAggregateSerializer,
    event_registered_body,
)
from decisions.models import Backtest, Decision, RuleVersion

PROBLEM = OpenApiResponse(description="Problem details (RFC 9457).")
# Built once, shared by every event (core.serializers.input_validated says why).
_EVENT_INPUT = EventCreateSerializer()
IDEMPOTENCY_PARAMETER = idempotency_key_parameter(required=True)


# --- Events and decisions ----------------------------------------------------------------------


@extend_schema_view(
    create=extend_schema(
        summary="Register an event and decide it",
        parameters=[IDEMPOTENCY_PARAMETER],
        request=EventCreateSerializer,
        responses={201: EventRegisteredSerializer, 400: PROBLEM, 409: PROBLEM, 422: PROBLEM},
        examples=examples.EVENT_CREATE,
    )
)
class EventViewSet(viewsets.ViewSet):
    """Events in, decisions out: exactly one decision per Idempotency-Key."""

    permission_classes = [ScopeRequired]
    required_scopes = {"create": Scope.EVENTS_WRITE}

    def create(self, request: Request) -> HttpResponse:
        def produce() -> tuple[int, Any]:
            incoming = input_validated(_EVENT_INPUT, request.data)
            decision = services.event_register(
                event_type=incoming["type"],
                payload=incoming["payload"],
                risk_request=incoming.get("risk"),
                idempotency_key=request.headers[HEADER],
                client_scope=client_scope(request.user),
                fingerprint=request_fingerprint(
                    method="POST", path=request.path, body=request.data
                ),
            )
            return status.HTTP_201_CREATED, event_registered_body(decision)

        return idempotent_response(request, produce, required=True)


class DecisionReadPermission(ScopeRequired):
    """decisions:read; without it, a submitter (events:write) reads the decisions of the events
    it submitted itself, and no others (get_queryset narrows the list the same way)."""

    def has_object_permission(self, request: Request, view: APIView, obj: Any) -> bool:
        if principal_may(request.user, Scope.DECISIONS_READ):
            return True
        self.message = (
            "This decision is of an event another client submitted; reading it needs the "
            "'decisions:read' scope."
        )
        return bool(obj.event.client_scope == client_scope(request.user))


class DecisionFilter(django_filters.FilterSet):
    outcome = django_filters.CharFilter()
    event_type = django_filters.CharFilter()
    rule = django_filters.CharFilter(field_name="matched_version__rule__key", label="Rule key")
    decided_after = UtcIsoDateTimeFilter(field_name="decided_at", lookup_expr="gte")
    decided_before = UtcIsoDateTimeFilter(field_name="decided_at", lookup_expr="lt")

    class Meta:
        model = Decision
        fields = ["outcome", "event_type", "rule", "decided_after", "decided_before"]


@extend_schema_view(
    list=extend_schema(
        summary="List decisions",
        description="Newest first; filter by outcome, event type, matched rule and time range.",
        examples=examples.DECISION_LIST,
    ),
    retrieve=extend_schema(
        summary="A decision with its trace and event",
        responses={200: DecisionDetailSerializer, 404: PROBLEM},
        examples=examples.DECISION_RETRIEVE,
    ),
)
class DecisionViewSet(viewsets.ReadOnlyModelViewSet):
    """Stored decisions; replay re-evaluates one and compares."""

    permission_classes = [DecisionReadPermission]
    required_scopes = {
        "list": (Scope.DECISIONS_READ, Scope.EVENTS_WRITE),
        "retrieve": (Scope.DECISIONS_READ, Scope.EVENTS_WRITE),
        "replay": Scope.DECISIONS_READ,
    }
    lookup_value_regex = "[0-9]{1,18}"
    filterset_class = DecisionFilter
    ordering_fields = ["decided_at", "id"]
    ordering = ["-decided_at", "-id"]

    def get_queryset(self):
        decisions = selectors.decision_list()
        if self.action == "list" and not principal_may(self.request.user, Scope.DECISIONS_READ):
            # A submitter without decisions:read: the decisions of its own events only.
            decisions = decisions.filter(event__client_scope=client_scope(self.request.user))
        return decisions

    def get_serializer_context(self) -> dict[str, Any]:
        context = dict(super().get_serializer_context())
        if self.action == "retrieve":
            context["pii"] = privacy.reader_sees_pii(
                self.request.user, decision_ids=[int(self.kwargs["pk"])]
            )
        return context

    def get_serializer_class(self):
        return DecisionSummarySerializer if self.action == "list" else DecisionDetailSerializer

    @extend_schema(
        summary="Replay a decision",
        description="Re-evaluates the stored event with the exact rule versions, list contents "
        "and policy recorded on the decision; nothing is written.",
        request=None,
        responses={200: ReplaySerializer, 404: PROBLEM},
        examples=examples.DECISION_REPLAY,
    )
    @action(detail=True, methods=["post"])
    def replay(self, request: Request, pk: str | None = None) -> Response:
        decision = selectors.decision_get(decision_id=int(pk or 0))
        return Response(ReplaySerializer(replay_selectors.decision_replay(decision=decision)).data)


# --- Rules -------------------------------------------------------------------------------------


def _version_transition(
    verb: str, change: Callable[..., RuleVersion], summary: str, description: str
) -> Any:
    """The POST action `versions/<number>/<verb>/`: one lifecycle service on one version."""

    def transition(
        self: viewsets.GenericViewSet, request: Request, key: str, number: str
    ) -> Response:
        version = selectors.rule_version_get(key=key, number=int(number))
        return Response(RuleVersionSerializer(change(version=version, actor=request.user)).data)

    return _version_action(verb, transition, summary, description, noted=False)


def _version_approval(verb: str, answer: Callable[..., Any], summary: str, description: str) -> Any:
    """The POST action `versions/<number>/<verb>/` of four-eyes publishing, with a note."""

    def approval(
        self: viewsets.GenericViewSet, request: Request, key: str, number: str
    ) -> Response:
        incoming = ApprovalNoteSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        version = selectors.rule_version_get(key=key, number=int(number))
        answer(version=version, actor=request.user, note=incoming.validated_data["note"])
        updated = selectors.rule_version_get(key=key, number=int(number))
        return Response(RuleVersionSerializer(updated).data)

    return _version_action(verb, approval, summary, description, noted=True)


def _version_action(
    verb: str, handler: Callable[..., Response], summary: str, description: str, *, noted: bool
) -> Any:
    handler.__name__ = verb.replace("-", "_")  # DRF names the route and handler after it
    routed = action(
        detail=True, methods=["post"], url_path=rf"versions/(?P<number>[0-9]{{1,9}})/{verb}"
    )(handler)
    return extend_schema(
        summary=summary,
        description=description,
        request=ApprovalNoteSerializer if noted else None,
        responses={
            200: RuleVersionSerializer,
            400: PROBLEM,
            403: PROBLEM,
            404: PROBLEM,
            409: PROBLEM,
        },
        examples=examples.RULE_VERSION_APPROVAL if noted else examples.RULE_VERSION_TRANSITION,
    )(routed)


@extend_schema_view(
    list=extend_schema(
        summary="List rules with their versions",
        parameters=[OpenApiParameter("event_type", str, description="Only this event type.")],
        examples=examples.RULE_LIST,
    ),
    retrieve=extend_schema(
        summary="A rule and its version history",
        responses={200: RuleSerializer, 404: PROBLEM},
        examples=examples.RULE_RETRIEVE,
    ),
    create=extend_schema(
        summary="Create a rule",
        description="A rule is its stable key; add versions to give it a condition.",
        request=RuleCreateSerializer,
        responses={201: RuleSerializer, 400: PROBLEM, 409: PROBLEM},
        examples=examples.RULE_CREATE,
    ),
)
class RuleViewSet(viewsets.GenericViewSet):
    """Rules and their immutable versions, for integrators (staff use the admin)."""

    permission_classes = [ScopeRequired]
    required_scopes = {
        "list": Scope.RULES_READ,
        "retrieve": Scope.RULES_READ,
        "create": Scope.RULES_WRITE,
        "versions": Scope.RULES_WRITE,
        "publish": Scope.RULES_WRITE,
        "shadow": Scope.RULES_WRITE,
        "retire": Scope.RULES_WRITE,
        "rollback": Scope.RULES_WRITE,
        "request_approval": Scope.RULES_WRITE,
        "canary": Scope.RULES_WRITE,
        # People only: no key carries it, so a machine can never approve.
        "approve": PeopleOnly.RULES_APPROVE,
        "reject": PeopleOnly.RULES_APPROVE,
    }
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
        "lists, risk, velocity (the aggregates the event type's policy declares; an undeclared "
        "one is answered 400 naming the condition) and similar (count, declined_share, "
        "mean_score of the nearest earlier decided cases of the same model).",
        request=RuleVersionCreateSerializer,
        responses={201: RuleVersionSerializer, 400: PROBLEM, 404: PROBLEM},
        examples=examples.RULE_VERSION_CREATE,
    )
    @action(detail=True, methods=["post"], url_path="versions")
    def versions(self, request: Request, key: str) -> Response:
        rule = selectors.rule_get(key=key)  # an unknown rule is a 404 whatever the body
        incoming = RuleVersionCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        version = services.rule_version_create(
            rule=rule, **incoming.validated_data, actor=request.user
        )
        return Response(RuleVersionSerializer(version).data, status=201)

    publish = _version_transition(
        "publish",
        services.rule_version_publish,
        "Publish a version",
        "A draft, shadow or canary version goes live; the previously published version retires "
        "in the same transaction. A version whose effective_from is still ahead becomes "
        "`scheduled` instead: the published version keeps deciding until that instant and this "
        "one decides from it on, with no gap. Publishing a retired version is a 409 (roll back "
        "instead), and so is publishing an unapproved version where the event type's policy "
        "requires approval.",
    )

    @extend_schema(
        summary="Run a version as a canary",
        description="The version decides `percent` % of the events, chosen by hashing the "
        "payload field `key` (an event without it goes to the control); the published version "
        "decides the rest. Each decision records its arm, and the rule page compares the arms' "
        "outcomes. On a running canary this changes the share: customers already in the canary "
        "stay in it. Publish the version to give it all the traffic, retire it to stop. Needs "
        "the same approval as publishing.",
        request=CanarySerializer,
        responses={
            200: RuleVersionSerializer,
            400: PROBLEM,
            403: PROBLEM,
            404: PROBLEM,
            409: PROBLEM,
        },
        examples=examples.RULE_VERSION_CANARY,
    )
    @action(detail=True, methods=["post"], url_path=r"versions/(?P<number>[0-9]{1,9})/canary")
    def canary(self, request: Request, key: str, number: str) -> Response:
        version = selectors.rule_version_get(key=key, number=int(number))
        incoming = CanarySerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        updated = services.rule_version_canary(
            version=version, **incoming.validated_data, actor=request.user
        )
        return Response(RuleVersionSerializer(updated).data)

    shadow = _version_transition(
        "shadow",
        services.rule_version_shadow,
        "Shadow a version",
        "A draft runs on live traffic and is recorded in traces without deciding.",
    )
    retire = _version_transition(
        "retire",
        services.rule_version_retire,
        "Retire a version",
        "The version stops running; this is final.",
    )
    rollback = _version_transition(
        "rollback",
        services.rule_version_rollback,
        "Roll back to a version",
        "Publishes a copy of this version's content as a new version and answers that version. "
        "Under a policy that requires approval, only an approved version can be rolled back to.",
    )
    request_approval = _version_approval(
        "request-approval",
        services.rule_version_approval_request,
        "Request approval of a version",
        "Four-eyes publishing: where the event type's policy requires approval, a draft or "
        "shadow version can be published only once a rule approver other than its author "
        "approved it. One open request at a time.",
    )
    approve = _version_approval(
        "approve",
        services.rule_version_approve,
        "Approve a version for publication",
        "A person with the rule approver role, other than the version's author, approves the "
        "open request (API keys cannot approve).",
    )
    reject = _version_approval(
        "reject",
        services.rule_version_reject,
        "Reject a version's approval request",
        "A rule approver other than the author rejects the open request; a new request may follow.",
    )


# --- Velocity aggregates ------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary="List velocity aggregates",
        description="The named aggregates each event type's policy declares; rules read them "
        "as `velocity.<name>`.",
        parameters=[OpenApiParameter("event_type", str, description="Only this event type.")],
        examples=examples.VELOCITY_AGGREGATE_LIST,
    ),
    create=extend_schema(
        summary="Declare a velocity aggregate",
        description="count of events, sum of a numeric payload field, or distinct count of a "
        "field, over the earlier events of the type with the same `key_field` value within "
        "`window_seconds`. Declaring one again by name changes it. Computed only for events "
        "whose live rules read it, and stored on the decision.",
        request=VelocityAggregateCreateSerializer,
        responses={201: VelocityAggregateSerializer, 400: PROBLEM, 409: PROBLEM},
        examples=examples.VELOCITY_AGGREGATE_CREATE,
    ),
    destroy=extend_schema(
        summary="Remove a velocity aggregate",
        description="Refused (409) while a rule version that is not retired reads it.",
        responses={204: None, 404: PROBLEM, 409: PROBLEM},
    ),
)
class VelocityAggregateViewSet(viewsets.GenericViewSet):
    """The velocity aggregates of the policies."""

    permission_classes = [ScopeRequired]
    required_scopes = {
        "list": Scope.RULES_READ,
        "create": Scope.RULES_WRITE,
        "destroy": Scope.RULES_WRITE,
    }
    serializer_class = VelocityAggregateSerializer
    lookup_value_regex = "[0-9]{1,18}"
    filter_backends: list = []

    def get_queryset(self):
        return selectors.velocity_aggregate_list(
            event_type=self.request.query_params.get("event_type")
        )

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(VelocityAggregateSerializer(page, many=True).data)

    def create(self, request: Request) -> Response:
        incoming = VelocityAggregateCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        aggregate = services.velocity_aggregate_save(**incoming.validated_data, actor=request.user)
        return Response(VelocityAggregateSerializer(aggregate).data, status=201)

    def destroy(self, request: Request, pk: str) -> Response:
        aggregate = selectors.velocity_aggregate_get(aggregate_id=int(pk))
        services.velocity_aggregate_delete(
            event_type=aggregate.policy.event_type, name=aggregate.name, actor=request.user
        )
        return Response(status=204)


# --- Backtests ---------------------------------------------------------------------------------


@extend_schema_view(
    create=extend_schema(
        summary="Backtest candidate versions",
        description="Evaluates the candidates (each replacing its rule's live version) against "
        "the stored events of the window, with the lists and policy each event was decided "
        "with. Without window_start and window_end the window is the last 30 days of stored "
        "events up to now; a window spans at most 366 days (both are settings). Small windows "
        "answer 201 with results; larger ones answer 202 and run in the background: poll the "
        "backtest for progress. Stored decisions never change.",
        request=BacktestCreateSerializer,
        responses={201: BacktestSerializer, 202: BacktestSerializer, 400: PROBLEM, 404: PROBLEM},
        examples=examples.BACKTEST_CREATE,
    ),
    retrieve=extend_schema(
        summary="A backtest's status, progress and results",
        responses={200: BacktestSerializer, 404: PROBLEM},
        examples=examples.BACKTEST_RETRIEVE,
    ),
)
class BacktestViewSet(viewsets.GenericViewSet):
    """What a candidate rule set would have decided; read-only for stored decisions.

    Reading a backtest needs rules:read, so a rule approver can look at the backtest of the
    version they are asked to approve; running one needs backtests:write.
    """

    permission_classes = [ScopeRequired]
    required_scopes = {"create": Scope.BACKTESTS_WRITE, "retrieve": Scope.RULES_READ}
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
