"""Rules and their immutable versions, named lists, policies, events, decisions and backtests,
review cases and webhook deliveries.

Longer than 500 lines on purpose: Django finds an app's models in one module, and these share
their constraints' vocabulary (one file keeps the whole schema of the decisions app readable).
"""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

IDENTIFIER_PATTERN = r"^[a-z][a-z0-9_]*$"
identifier_validator = RegexValidator(
    IDENTIFIER_PATTERN, "Use lower-case letters, digits and underscores, starting with a letter."
)
RULE_KEY_PATTERN = r"^[a-z][a-z0-9_-]*$"
rule_key_validator = RegexValidator(
    RULE_KEY_PATTERN, "Use lower-case letters, digits, '-' and '_', starting with a letter."
)
PRIORITY_LIMIT = 1_000_000
# A velocity aggregate looks back at most 90 days (the backtest's horizon is about as long).
VELOCITY_MAX_WINDOW_SECONDS = 90 * 24 * 3600


class Rule(models.Model):
    """A rule's stable identity; what it does lives in its immutable versions."""

    key = models.CharField(max_length=64, unique=True, validators=[rule_key_validator])
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, max_length=4000)
    event_type = models.CharField(max_length=64, validators=[identifier_validator])
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["event_type", "key"]
        indexes = [models.Index(fields=["event_type", "key"], name="rule_event_type_key_idx")]

    def __str__(self) -> str:
        return self.key

    def number_with(self, status: str) -> int | None:
        """The number of this rule's version in `status` (reads prefetched versions)."""
        return next((v.number for v in self.versions.all() if v.status == status), None)


class RuleVersion(models.Model):
    """One immutable version of a rule; only its status moves (draft/shadow/published/retired)."""

    class Status(models.TextChoices):
        DRAFT = "draft"
        PUBLISHED = "published"
        SHADOW = "shadow"
        # Published at its effective_from: until then the published version keeps deciding.
        SCHEDULED = "scheduled"
        # Decides canary_percent of the traffic (chosen by hashing a payload key).
        CANARY = "canary"
        RETIRED = "retired"

    rule = models.ForeignKey(Rule, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    condition = models.TextField(
        help_text="CEL over event, event_type, now, lists, risk, velocity and similar."
    )
    outcome = models.CharField(max_length=32, validators=[identifier_validator])
    priority = models.IntegerField(
        validators=[MinValueValidator(-PRIORITY_LIMIT), MaxValueValidator(PRIORITY_LIMIT)],
        help_text="Lower runs first; ties are broken by rule key.",
    )
    actions = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    effective_from = models.DateTimeField(null=True, blank=True)
    effective_until = models.DateTimeField(null=True, blank=True)
    # Names of the lists the condition reads, derived when the version is compiled, so the
    # engine loads (and a decision snapshots) exactly those.
    list_names = models.JSONField(default=list, blank=True)
    # Likewise the velocity aggregates the condition reads, and whether it reads `similar`: the
    # decision service computes those (and only those) when a live version reads them.
    velocity_names = models.JSONField(default=list, blank=True)
    reads_similar = models.BooleanField(default=False)
    # Set when the version becomes a canary: the share of traffic it decides, and the payload
    # field whose hash picks that traffic (the same key always lands in the same arm).
    canary_percent = models.PositiveSmallIntegerField(null=True, blank=True)
    canary_key = models.CharField(max_length=64, blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    author_label = models.CharField(max_length=150, blank=True)
    change_note = models.TextField(blank=True, max_length=2000)
    created_at = models.DateTimeField(auto_now_add=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["rule__key", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["rule", "number"], name="rule_version_unique_number"),
            models.UniqueConstraint(
                fields=["rule"],
                condition=Q(status="published"),
                name="rule_version_one_published",
            ),
            models.UniqueConstraint(
                fields=["rule"], condition=Q(status="shadow"), name="rule_version_one_shadow"
            ),
            models.UniqueConstraint(
                fields=["rule"], condition=Q(status="scheduled"), name="rule_version_one_scheduled"
            ),
            models.UniqueConstraint(
                fields=["rule"], condition=Q(status="canary"), name="rule_version_one_canary"
            ),
            models.CheckConstraint(
                condition=Q(
                    status__in=["draft", "published", "shadow", "scheduled", "canary", "retired"]
                ),
                name="rule_version_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(canary_percent__isnull=True)
                | (Q(canary_percent__gte=1) & Q(canary_percent__lte=99)),
                name="rule_version_canary_percent_range",
            ),
            models.CheckConstraint(
                condition=~Q(status="scheduled") | Q(effective_from__isnull=False),
                name="rule_version_scheduled_has_start",
            ),
            models.CheckConstraint(
                condition=~Q(status="canary")
                | (Q(canary_percent__isnull=False) & ~Q(canary_key="")),
                name="rule_version_canary_configured",
            ),
            models.CheckConstraint(condition=Q(number__gte=1), name="rule_version_number_positive"),
            models.CheckConstraint(
                condition=Q(priority__gte=-PRIORITY_LIMIT) & Q(priority__lte=PRIORITY_LIMIT),
                name="rule_version_priority_bounded",
            ),
            models.CheckConstraint(
                condition=Q(effective_from__isnull=True)
                | Q(effective_until__isnull=True)
                | Q(effective_from__lt=models.F("effective_until")),
                name="rule_version_window_ordered",
            ),
        ]
        indexes = [models.Index(fields=["status", "rule"], name="rule_version_status_idx")]

    def __str__(self) -> str:
        return f"{self.rule.key} v{self.number} ({self.status})"

    @property
    def content(self) -> dict:
        """The fields that define what the version does (compared by diffs and rollbacks)."""
        return {
            "condition": self.condition,
            "outcome": self.outcome,
            "priority": self.priority,
            "actions": self.actions,
            "effective_from": self.effective_from.isoformat() if self.effective_from else None,
            "effective_until": self.effective_until.isoformat() if self.effective_until else None,
        }


class RuleVersionApproval(models.Model):
    """One request to approve a version for publication, and its answer (four-eyes publishing)."""

    class Status(models.TextChoices):
        REQUESTED = "requested"
        APPROVED = "approved"
        REJECTED = "rejected"

    version = models.ForeignKey(RuleVersion, on_delete=models.PROTECT, related_name="approvals")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.REQUESTED)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by_label = models.CharField(max_length=150, blank=True)
    request_note = models.TextField(blank=True, max_length=2000)
    requested_at = models.DateTimeField()
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_by_label = models.CharField(max_length=150, blank=True)
    decision_note = models.TextField(blank=True, max_length=2000)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["version", "-requested_at", "-id"]
        constraints = [
            # One open request at a time, and a version is approved at most once.
            models.UniqueConstraint(
                fields=["version"],
                condition=Q(status="requested"),
                name="rule_version_approval_one_open",
            ),
            models.UniqueConstraint(
                fields=["version"],
                condition=Q(status="approved"),
                name="rule_version_approval_one_approved",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["requested", "approved", "rejected"]),
                name="rule_version_approval_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(status="requested") | Q(decided_at__isnull=False),
                name="rule_version_approval_decided_has_time",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.version}: {self.status}"


class NamedList(models.Model):
    """A list staff maintain (e.g. blocked countries) that rules read as `lists.<name>`."""

    class ValueType(models.TextChoices):
        STRING = "string"
        INTEGER = "integer"
        DOUBLE = "double"

    name = models.CharField(max_length=64, unique=True, validators=[identifier_validator])
    description = models.TextField(blank=True, max_length=2000)
    value_type = models.CharField(
        max_length=16, choices=ValueType.choices, default=ValueType.STRING
    )
    # Bumped by every change, so a decision can record which contents it saw.
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class NamedListItem(models.Model):
    """One value of a named list, stored as text and typed by the list's value type."""

    named_list = models.ForeignKey(NamedList, on_delete=models.CASCADE, related_name="items")
    value = models.CharField(max_length=200)

    class Meta:
        ordering = ["named_list", "value"]
        constraints = [
            models.UniqueConstraint(
                fields=["named_list", "value"], name="named_list_item_unique_value"
            )
        ]

    def __str__(self) -> str:
        return self.value


class Policy(models.Model):
    """How an event type is decided: strategy, default outcome and outcome precedence."""

    class Strategy(models.TextChoices):
        FIRST_MATCH = "first_match", "First match by priority"
        COLLECT = "collect", "Collect, highest precedence wins"

    event_type = models.CharField(max_length=64, unique=True, validators=[identifier_validator])
    strategy = models.CharField(
        max_length=16, choices=Strategy.choices, default=Strategy.FIRST_MATCH
    )
    default_outcome = models.CharField(
        max_length=32, default="approve", validators=[identifier_validator]
    )
    # Most severe first, e.g. ["decline", "review", "approve"]; outcomes not listed rank last.
    outcome_precedence = models.JSONField(default=list, blank=True)
    # Four eyes: a version of this event type's rules goes live only once a person other than
    # its author approved it.
    requires_approval = models.BooleanField(
        default=False,
        help_text="Publishing a rule version needs the approval of someone other than its author.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["event_type"]
        verbose_name_plural = "policies"
        constraints = [
            models.CheckConstraint(
                condition=Q(strategy__in=["first_match", "collect"]), name="policy_strategy_valid"
            )
        ]

    def __str__(self) -> str:
        return f"{self.event_type} ({self.strategy})"


class VelocityAggregate(models.Model):
    """A named aggregate over earlier events of the policy's type sharing a payload key, read by
    rules as `velocity.<name>` (e.g. count of the customer's events in the last hour)."""

    class Function(models.TextChoices):
        COUNT = "count", "Count of events"
        SUM = "sum", "Sum of a numeric field"
        DISTINCT = "distinct", "Count of distinct values of a field"

    policy = models.ForeignKey(Policy, on_delete=models.CASCADE, related_name="aggregates")
    name = models.CharField(max_length=64, validators=[identifier_validator])
    function = models.CharField(max_length=16, choices=Function.choices)
    key_field = models.CharField(
        max_length=40,
        validators=[identifier_validator],
        help_text="The payload field that groups events, e.g. customer_id.",
    )
    field = models.CharField(
        max_length=64,
        blank=True,
        validators=[identifier_validator],
        help_text="The payload field summed or counted distinctly (empty for count).",
    )
    window_seconds = models.PositiveIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(VELOCITY_MAX_WINDOW_SECONDS)],
        help_text="How far back the aggregate looks, in seconds (3600: the last hour).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["policy", "name"]
        constraints = [
            models.UniqueConstraint(fields=["policy", "name"], name="velocity_unique_name"),
            models.CheckConstraint(
                condition=Q(function__in=["count", "sum", "distinct"]),
                name="velocity_function_valid",
            ),
            models.CheckConstraint(
                condition=Q(function="count") | ~Q(field=""), name="velocity_field_needed"
            ),
            models.CheckConstraint(
                condition=Q(window_seconds__gte=1)
                & Q(window_seconds__lte=VELOCITY_MAX_WINDOW_SECONDS),
                name="velocity_window_bounded",
            ),
        ]

    def __str__(self) -> str:
        return f"velocity.{self.name}"


class Event(models.Model):
    """Something that happened and needs a decision; its payload is never changed, only blanked
    by retention (`payload_purged_at`), after which its decision can no longer be replayed."""

    type = models.CharField(max_length=64, validators=[identifier_validator])
    payload = models.JSONField(blank=True)
    # The optional scoring request: {"model_id": ..., "features": {...}}.
    risk_request = models.JSONField(null=True, blank=True)
    idempotency_key = models.CharField(max_length=255)
    client_scope = models.CharField(max_length=200)
    fingerprint = models.CharField(max_length=64)
    received_at = models.DateTimeField()
    payload_purged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["client_scope", "idempotency_key"], name="event_unique_idempotency_key"
            ),
            models.CheckConstraint(
                condition=~Q(idempotency_key=""), name="event_idempotency_key_present"
            ),
        ]
        indexes = [models.Index(fields=["type", "received_at"], name="event_type_received_idx")]

    def __str__(self) -> str:
        return f"{self.type} #{self.pk}"


class Decision(models.Model):
    """The one decision made for an event, with everything needed to replay it exactly."""

    event = models.OneToOneField(Event, on_delete=models.PROTECT, related_name="decision")
    event_type = models.CharField(max_length=64)
    outcome = models.CharField(max_length=32)
    # No index of its own: decision_matched_idx (matched_version, -decided_at) serves every
    # lookup by version, and a second one cost each decision's INSERT another b-tree entry.
    matched_version = models.ForeignKey(
        RuleVersion,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="decisions",
        db_index=False,
    )
    # What the shadow versions would have decided (equal to outcome when they agree).
    shadow_outcome = models.CharField(max_length=32, blank=True)
    # The policy as it was applied: {"event_type", "strategy", "default_outcome", "precedence"}.
    policy = models.JSONField()
    trace = models.JSONField(default=list)
    # {name: {"version": n, "values": [...]}} of every list the evaluated rules read.
    lists_snapshot = models.JSONField(default=dict, blank=True)
    # Actions of the deciding rule(s), to be performed: [{"type", ..., "rule", "version"}].
    actions = models.JSONField(default=list, blank=True)
    engine_us = models.FloatField(help_text="Engine time: context build plus every evaluation.")
    risk_score = models.FloatField(null=True, blank=True)
    risk_label = models.CharField(max_length=32, blank=True)
    # The scoring record behind risk_score; the lead may turn it into a FK to records.
    risk_record_id = models.BigIntegerField(null=True, blank=True)
    # What the rules read beyond the event, computed once and replayed from here:
    # {"velocity": {name: value}, "similar": {"count", "declined_share", "mean_score", "k",
    # "neighbours": [...]}}; a part is present only when a live rule read it.
    history = models.JSONField(default=dict, blank=True)
    # Why: [{"kind": "rule" | "policy" | "driver", "code", "text", ...}], the deciding rules
    # first, then the drivers that pushed the score towards risk (adverse-action style).
    reasons = models.JSONField(default=list, blank=True)
    # Rules under a canary: {rule_key: {"arm": "canary" | "control", "version_id", "bucket",
    # "percent", "key", "canary_version_id", "control_version_id"}}.
    arms = models.JSONField(default=dict, blank=True)
    decided_at = models.DateTimeField()

    class Meta:
        ordering = ["-decided_at", "-id"]
        indexes = [
            models.Index(fields=["-decided_at", "-id"], name="decision_decided_idx"),
            models.Index(fields=["outcome", "-decided_at"], name="decision_outcome_idx"),
            models.Index(fields=["event_type", "-decided_at"], name="decision_event_type_idx"),
            models.Index(fields=["matched_version", "-decided_at"], name="decision_matched_idx"),
        ]

    def __str__(self) -> str:
        return f"decision #{self.pk}: {self.outcome}"


class Backtest(models.Model):
    """A candidate rule set replayed over stored events; it never touches a stored decision."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        COMPLETED = "completed"
        FAILED = "failed"

    # [{"rule_key": ..., "version": n}, ...]: each replaces its rule's live version.
    candidates = models.JSONField()
    event_types = models.JSONField(default=list)
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    results = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_by_label = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(window_start__lt=models.F("window_end")),
                name="backtest_window_ordered",
            ),
            models.CheckConstraint(
                condition=Q(processed__lte=models.F("total")), name="backtest_progress_bounded"
            ),
        ]

    def __str__(self) -> str:
        return f"backtest #{self.pk} ({self.status})"

    @property
    def progress(self) -> float:
        return 1.0 if not self.total else self.processed / self.total


class ReviewCase(models.Model):
    """A decision the engine sent to `review`, waiting for a person.

    The analyst's resolution is stored here, beside the engine's outcome on the decision, which
    never changes: replay and backtests keep reproducing what the engine decided.
    """

    class Status(models.TextChoices):
        OPEN = "open"
        RESOLVED = "resolved"

    class Resolution(models.TextChoices):
        APPROVE = "approve"
        DECLINE = "decline"

    decision = models.OneToOneField(Decision, on_delete=models.PROTECT, related_name="review_case")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    opened_at = models.DateTimeField()
    # Copied from the decision so the queue orders by risk from its own index.
    risk_score = models.FloatField(null=True, blank=True)
    # Who holds the case (a caller's client_scope: `user:<id>` or `key:<prefix>`) and until when;
    # a claim past `claimed_until` is free for anyone to take.
    claimed_by = models.CharField(max_length=200, blank=True)
    claimed_by_label = models.CharField(max_length=150, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    resolution = models.CharField(max_length=16, choices=Resolution.choices, blank=True)
    note = models.TextField(blank=True, max_length=2000)
    resolved_by_label = models.CharField(max_length=150, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["opened_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["open", "resolved"]), name="review_case_status_valid"
            ),
            models.CheckConstraint(
                condition=(
                    Q(status="open", resolution="", resolved_at__isnull=True)
                    | Q(
                        status="resolved",
                        resolution__in=["approve", "decline"],
                        resolved_at__isnull=False,
                    )
                ),
                name="review_case_resolution_matches_status",
            ),
        ]
        indexes = [
            models.Index(
                fields=["opened_at", "id"],
                condition=Q(status="open"),
                name="review_case_open_age_idx",
            ),
            models.Index(
                models.F("risk_score").desc(nulls_last=True),
                "opened_at",
                condition=Q(status="open"),
                name="review_case_open_risk_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"review of decision #{self.decision_id} ({self.status})"

    @property
    def claim_active(self) -> bool:
        return self.claimed_until is not None and self.claimed_until > timezone.now()


class WebhookEndpoint(models.Model):
    """An HTTPS endpoint staff registered, which rule actions call by name (`webhook` actions).

    The signing secret is stored encrypted (decisions.signing) and shown once, when it is made.
    """

    name = models.CharField(max_length=64, unique=True, validators=[identifier_validator])
    url = models.URLField(max_length=500)
    description = models.TextField(blank=True, max_length=2000)
    secret_encrypted = models.TextField(editable=False)
    is_active = models.BooleanField(default=True)
    created_by_label = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class WebhookDelivery(models.Model):
    """One webhook action of one decision: at most one per (decision, action), delivered once."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SENDING = "sending"
        RETRYING = "retrying"
        DELIVERED = "delivered"
        FAILED = "failed"

    decision = models.ForeignKey(Decision, on_delete=models.PROTECT, related_name="webhooks")
    action_index = models.PositiveSmallIntegerField()
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.PROTECT, related_name="+")
    body = models.JSONField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    # While `sending`, the sender's lease: past it (a worker died mid-send) another may retry.
    lease_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["decision", "action_index"]
        constraints = [
            models.UniqueConstraint(
                fields=["decision", "action_index"], name="webhook_delivery_once_per_action"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "sending", "retrying", "delivered", "failed"]),
                name="webhook_delivery_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"webhook {self.endpoint_id} for decision #{self.decision_id} ({self.status})"


class WebhookAttempt(models.Model):
    """One try at sending a delivery, as the decision's trail shows it."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="tries")
    number = models.PositiveSmallIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.FloatField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["delivery", "number"], name="webhook_attempt_unique_number"
            )
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}: {self.status_code or self.error}"
