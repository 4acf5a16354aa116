"""What the decisions API reads and answers: request and response serializers."""

from typing import Any

from django.conf import settings
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.pii import features_mask
from core.serializers import StrictSerializer
from decisions import privacy
from decisions.models import (
    IDENTIFIER_PATTERN,
    RULE_KEY_PATTERN,
    VELOCITY_MAX_WINDOW_SECONDS,
    Backtest,
    Decision,
    Rule,
    RuleVersion,
    RuleVersionApproval,
    VelocityAggregate,
)
from decisions.services.backtests import MAX_CANDIDATES
from decisions.services.rules import MAX_ACTIONS

# --- Events and decisions ----------------------------------------------------------------------


class RiskRequestSerializer(StrictSerializer):
    model_id = serializers.CharField(max_length=64)
    features = serializers.DictField(required=False, default=dict)


class EventCreateSerializer(StrictSerializer):
    type = serializers.RegexField(IDENTIFIER_PATTERN, max_length=64)
    payload = serializers.DictField()
    risk = RiskRequestSerializer(required=False, allow_null=True)


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


class ReasonSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["rule", "policy", "driver"])
    code = serializers.CharField(help_text="The rule key, `default`, or the driver's feature.")
    text = serializers.CharField(help_text="What a notice to the applicant would say.")
    value = serializers.JSONField(required=False, help_text="Drivers: the feature's value.")
    contribution = serializers.FloatField(
        required=False, help_text="Drivers: log-odds added towards risk."
    )


class DecisionSerializer(DecisionSummarySerializer):
    risk = serializers.SerializerMethodField()
    reasons = ReasonSerializer(
        many=True,
        read_only=True,
        help_text="The deciding rules (or the policy's default), then up to four drivers that "
        "pushed the risk score up, largest first.",
    )
    history = serializers.JSONField(
        read_only=True,
        help_text="What the rules read beyond the event, as computed for this decision: "
        "`velocity` {name: value} and `similar` {count, declined_share, mean_score, k, "
        "neighbours}; a part is present only when a live rule read it.",
    )
    arms = serializers.JSONField(
        read_only=True,
        help_text="Per rule under a canary: which arm decided (canary or control), its "
        "version id, the hash bucket, the percentage and the payload key.",
    )

    class Meta(DecisionSummarySerializer.Meta):
        fields = [
            *DecisionSummarySerializer.Meta.fields,
            "policy",
            "trace",
            "lists_snapshot",
            "actions",
            "risk",
            "reasons",
            "history",
            "arms",
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
    """A decision with its event; personal data masked unless the view found `pii` allowed."""

    event = EventSerializer()

    class Meta(DecisionSerializer.Meta):
        fields = [*DecisionSerializer.Meta.fields, "event"]

    def to_representation(self, instance: Decision) -> dict[str, Any]:
        body = super().to_representation(instance)
        if not self.context.get("pii"):
            body["event"]["payload"] = features_mask(body["event"]["payload"] or {})
            body["event"]["risk"] = privacy.risk_request_masked(body["event"]["risk"])
            body["actions"] = privacy.actions_masked(body["actions"])
            body["reasons"] = privacy.reasons_masked(body["reasons"])
        return body


class EventRegisteredSerializer(serializers.Serializer):
    event_id = serializers.IntegerField()
    decision = DecisionSerializer()


# One instance for every answer: a serializer builds its fields (a ModelSerializer introspects
# the model for each) on first use and keeps them, so a new one per event cost ~8 % of the
# event's time. Its fields hold no state of one call: to_representation only reads them.
_REGISTERED = EventRegisteredSerializer()


def event_registered_body(decision: Decision) -> dict[str, Any]:
    """The body of POST /events/ for a stored decision: EventRegisteredSerializer's data."""
    registered = {"event_id": decision.event_id, "decision": decision}
    return dict(_REGISTERED.to_representation(registered))


class ReplaySerializer(serializers.Serializer):
    decision_id = serializers.IntegerField()
    matches = serializers.BooleanField()
    differences = serializers.ListField(child=serializers.CharField())
    stored = serializers.JSONField()
    replayed = serializers.JSONField()


# --- Rules -------------------------------------------------------------------------------------


class ApprovalSerializer(serializers.ModelSerializer):
    class Meta:
        model = RuleVersionApproval
        fields = [
            "status",
            "requested_by_label",
            "request_note",
            "requested_at",
            "decided_by_label",
            "decision_note",
            "decided_at",
        ]
        read_only_fields = fields


class RuleVersionSerializer(serializers.ModelSerializer):
    approval = serializers.SerializerMethodField(
        help_text="The latest approval request and its answer (four-eyes publishing), or null."
    )

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
            "velocity_names",
            "reads_similar",
            "canary_percent",
            "canary_key",
            "author_label",
            "change_note",
            "created_at",
            "status_changed_at",
            "approval",
        ]
        read_only_fields = fields

    @extend_schema_field(ApprovalSerializer(allow_null=True))
    def get_approval(self, version: RuleVersion) -> dict[str, Any] | None:
        # Reads the prefetched approvals (newest first by the model's ordering).
        latest = next(iter(version.approvals.all()), None)
        return ApprovalSerializer(latest).data if latest else None


class ApprovalNoteSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class RuleSerializer(serializers.ModelSerializer):
    published_version = serializers.SerializerMethodField()
    shadow_version = serializers.SerializerMethodField()
    scheduled_version = serializers.SerializerMethodField()
    canary_version = serializers.SerializerMethodField()
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
            "scheduled_version",
            "canary_version",
            "versions",
        ]

    def get_published_version(self, rule: Rule) -> int | None:
        return rule.number_with(RuleVersion.Status.PUBLISHED)

    def get_shadow_version(self, rule: Rule) -> int | None:
        return rule.number_with(RuleVersion.Status.SHADOW)

    def get_scheduled_version(self, rule: Rule) -> int | None:
        return rule.number_with(RuleVersion.Status.SCHEDULED)

    def get_canary_version(self, rule: Rule) -> int | None:
        return rule.number_with(RuleVersion.Status.CANARY)


class RuleCreateSerializer(StrictSerializer):
    key = serializers.RegexField(RULE_KEY_PATTERN, max_length=64)
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(max_length=4000, required=False, allow_blank=True)
    event_type = serializers.RegexField(IDENTIFIER_PATTERN, max_length=64)


class RuleVersionCreateSerializer(StrictSerializer):
    condition = serializers.CharField(max_length=4000, trim_whitespace=False)
    outcome = serializers.RegexField(IDENTIFIER_PATTERN, max_length=32)
    priority = serializers.IntegerField(min_value=-1_000_000, max_value=1_000_000)
    actions = serializers.ListField(
        child=serializers.DictField(),
        required=False,
        default=list,
        max_length=MAX_ACTIONS,
        help_text='Side effects when the rule matches, e.g. {"type": "sms", "to": "event.phone", '
        '"template": "..."} (`to` is CEL over the event, checked when saved) or {"type": '
        '"webhook", "endpoint": "<name of an endpoint staff registered>"}.',
    )
    effective_from = serializers.DateTimeField(required=False, allow_null=True, default=None)
    effective_until = serializers.DateTimeField(required=False, allow_null=True, default=None)
    change_note = serializers.CharField(max_length=2000, required=False, allow_blank=True)


class CanarySerializer(StrictSerializer):
    percent = serializers.IntegerField(
        min_value=1, max_value=99, help_text="The share of events the version decides."
    )
    key = serializers.RegexField(
        IDENTIFIER_PATTERN,
        max_length=64,
        help_text="The payload field whose hash picks the events, e.g. customer_id.",
    )


class VelocityAggregateSerializer(serializers.ModelSerializer):
    event_type = serializers.CharField(source="policy.event_type", read_only=True)

    class Meta:
        model = VelocityAggregate
        fields = ["id", "event_type", "name", "function", "key_field", "field", "window_seconds"]
        read_only_fields = fields


class VelocityAggregateCreateSerializer(StrictSerializer):
    event_type = serializers.RegexField(IDENTIFIER_PATTERN, max_length=64)
    name = serializers.RegexField(IDENTIFIER_PATTERN, max_length=64)
    function = serializers.ChoiceField(choices=VelocityAggregate.Function.choices)
    key_field = serializers.RegexField(IDENTIFIER_PATTERN, max_length=40)
    field = serializers.RegexField(
        IDENTIFIER_PATTERN, max_length=64, required=False, default="", allow_blank=True
    )
    window_seconds = serializers.IntegerField(min_value=1, max_value=VELOCITY_MAX_WINDOW_SECONDS)


# --- Backtests ---------------------------------------------------------------------------------


class CandidateSerializer(StrictSerializer):
    rule_key = serializers.RegexField(RULE_KEY_PATTERN, max_length=64)
    version = serializers.IntegerField(min_value=1, max_value=2_000_000_000)


class BacktestCreateSerializer(StrictSerializer):
    """One draft (`rule_key` + `version`) or a candidate set (`candidates`), or both."""

    rule_key = serializers.RegexField(RULE_KEY_PATTERN, max_length=64, required=False)
    version = serializers.IntegerField(min_value=1, max_value=2_000_000_000, required=False)
    candidates = serializers.ListField(
        child=CandidateSerializer(),
        required=False,
        min_length=1,
        max_length=MAX_CANDIDATES,
        help_text="At most one version per rule (a rule named twice answers 400).",
    )
    window_start = serializers.DateTimeField(
        required=False,
        help_text="Start of the window of stored events (inclusive). Default: "
        f"{settings.DECISIONS_BACKTEST_DEFAULT_WINDOW_DAYS} days before window_end. A window "
        f"spans at most {settings.DECISIONS_BACKTEST_MAX_WINDOW_DAYS} days.",
    )
    window_end = serializers.DateTimeField(
        required=False,
        help_text="End of the window (exclusive). Default: now.",
    )

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
            "window_start": attrs.get("window_start"),
            "window_end": attrs.get("window_end"),
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


class BacktestCreateSchema(OpenApiSerializerExtension):
    """What the serializer's `validate` demands, stated in the document: `rule_key` and
    `version` together, or `candidates`, at most MAX_CANDIDATES in all."""

    target_class = BacktestCreateSerializer

    def map_serializer(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        schema = auto_schema._map_basic_serializer(self.target, direction)
        schema["anyOf"] = [{"required": ["rule_key", "version"]}, {"required": ["candidates"]}]
        schema["dependentRequired"] = {"rule_key": ["version"], "version": ["rule_key"]}
        # The draft named by rule_key counts as one of the MAX_CANDIDATES.
        schema["if"] = {"required": ["rule_key"]}
        schema["then"] = {"properties": {"candidates": {"maxItems": MAX_CANDIDATES - 1}}}
        return schema


class VelocityAggregateCreateSchema(OpenApiSerializerExtension):
    """What the service demands, stated in the document: sum and distinct name a `field`."""

    target_class = VelocityAggregateCreateSerializer

    def map_serializer(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        schema = auto_schema._map_basic_serializer(self.target, direction)
        schema["if"] = {
            "required": ["function"],
            "properties": {"function": {"enum": ["sum", "distinct"]}},
        }
        schema["then"] = {"required": ["field"], "properties": {"field": {"minLength": 1}}}
        return schema
