"""Contacts, their consent ledger, campaigns, messages with their transitions, raw webhooks.

One module for the app's tables, as Django expects; mostly fields, constraints and indexes.
"""

from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.db.models import Q

from core.pii import phone_mask

ERASED_PREFIX = "erased:"


class Contact(models.Model):
    """A recipient keyed by the E.164 form of their phone number."""

    # Room for an erased contact's marker (`erased:` and 16 hex digits) in place of the number.
    phone = models.CharField(max_length=32, unique=True, help_text="E.164, e.g. +14155552671.")
    attributes = models.JSONField(default=dict, blank=True, help_text="Free-form, for segments.")
    region = models.CharField(max_length=2, blank=True, default="", help_text="ISO country.")
    number_time_zones = models.CharField(
        max_length=1000, blank=True, default="", help_text="Zones of the number (libphonenumber)."
    )
    time_zone = models.CharField(
        max_length=64, blank=True, default="", help_text="Override; empty = derived from number."
    )
    opted_out = models.BooleanField(default=False, help_text="Global opt-out (STOP and co.).")
    number_invalid = models.BooleanField(
        default=False, help_text="The provider refused the number (21211 / 21614)."
    )
    erased_at = models.DateTimeField(
        null=True, blank=True, help_text="When the number, attributes and bodies were erased."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["phone"]
        indexes = [
            # `attributes @> {"plan": "gold"}` (contact search, segments) reads this, not the table.
            GinIndex(
                fields=["attributes"], opclasses=["jsonb_path_ops"], name="contact_attributes_gin"
            ),
        ]

    def __str__(self) -> str:
        # Masked: this name lands in admin breadcrumbs, selection labels and the admin's log.
        return self.phone if self.phone.startswith(ERASED_PREFIX) else phone_mask(self.phone)

    @property
    def zones(self) -> tuple[str, ...]:
        """The zones quiet hours are checked in: the override, else the number's zones."""
        if self.time_zone:
            return (self.time_zone,)
        return tuple(zone for zone in self.number_time_zones.split(",") if zone) or ("UTC",)


class Subscription(models.Model):
    """The current consent of a contact for a topic; derived from the ledger, kept for joins."""

    class Status(models.TextChoices):
        OPTED_IN = "opted_in"
        OPTED_OUT = "opted_out"

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="subscriptions")
    topic = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices)
    source = models.CharField(max_length=16)
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["contact_id", "topic"]
        constraints = [
            models.UniqueConstraint(fields=["contact", "topic"], name="subscription_unique_topic"),
            models.CheckConstraint(
                condition=Q(status__in=["opted_in", "opted_out"]), name="subscription_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.contact_id}:{self.topic}={self.status}"


class ConsentEvent(models.Model):
    """Append-only ledger: one opt-in or opt-out, its source, time and evidence."""

    ALL_TOPICS = "*"

    class Action(models.TextChoices):
        OPT_IN = "opt_in"
        OPT_OUT = "opt_out"

    class Source(models.TextChoices):
        API = "api"
        IMPORT = "import"
        SMS_KEYWORD = "sms_keyword"
        ADMIN = "admin"
        PROVIDER = "provider"
        ERASURE = "erasure"

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="consent_events")
    topic = models.CharField(max_length=64, help_text="'*' is every topic (a global STOP).")
    action = models.CharField(max_length=8, choices=Action.choices)
    source = models.CharField(max_length=16, choices=Source.choices)
    evidence = models.JSONField(default=dict, blank=True)
    # The number's salted hash: the ledger stays evidence of consent once the number is erased.
    phone_hash = models.CharField(max_length=64, blank=True, default="")
    occurred_at = models.DateTimeField()

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["contact", "topic", "-occurred_at"], name="consent_idx"),
            models.Index(fields=["phone_hash"], name="consent_phone_hash_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(action__in=["opt_in", "opt_out"]), name="consent_action_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.contact_id} {self.action} {self.topic} ({self.source})"


class Campaign(models.Model):
    """A bulk SMS send: a segment, a template, a window and a rate, in a validated config."""

    class Status(models.TextChoices):
        DRAFT = "draft"
        SCHEDULED = "scheduled"
        RUNNING = "running"
        PAUSED = "paused"
        COMPLETED = "completed"
        CANCELED = "canceled"

    name = models.CharField(max_length=200)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    config = models.JSONField(default=dict)
    created_by = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    launched_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    launch_summary = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    status__in=["draft", "scheduled", "running", "paused", "completed", "canceled"]
                ),
                name="campaign_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def topic(self) -> str:
        return str(self.config.get("topic") or "marketing")


class Message(models.Model):
    """One SMS to one contact; the row is the ledger that makes sending at most once."""

    class Status(models.TextChoices):
        PENDING = "pending"
        QUEUED = "queued"
        SENDING = "sending"
        UNKNOWN = "unknown"
        SENT = "sent"
        DELIVERED = "delivered"
        UNDELIVERED = "undelivered"
        FAILED = "failed"
        CANCELED = "canceled"

    # No index of its own: message_unique_campaign_contact leads with campaign and serves every
    # lookup by campaign, and a launch writes 100,000 rows into each index it has.
    campaign = models.ForeignKey(
        Campaign,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="messages",
        db_index=False,
    )
    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="messages")
    # NULL, not "", for "none": the partial unique constraints below skip NULLs.
    reference = models.CharField(  # noqa: DJ001
        max_length=200, null=True, blank=True, help_text="Caller's id (transactional)."
    )
    topic = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    body = models.TextField()
    segments = models.PositiveSmallIntegerField(default=1)
    send_after = models.DateTimeField()
    queued_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    provider = models.CharField(max_length=16, blank=True, default="")
    provider_sid = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    error_code = models.CharField(max_length=16, blank=True, default="")
    error_message = models.CharField(max_length=500, blank=True, default="")
    cancel_reason = models.CharField(max_length=32, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            # NULL campaigns (transactional messages) are distinct, so only campaign rows collide.
            models.UniqueConstraint(
                fields=["campaign", "contact"],
                condition=Q(campaign__isnull=False),
                name="message_unique_campaign_contact",
            ),
            models.CheckConstraint(
                condition=Q(
                    status__in=[
                        "pending",
                        "queued",
                        "sending",
                        "unknown",
                        "sent",
                        "delivered",
                        "undelivered",
                        "failed",
                        "canceled",
                    ]
                ),
                name="message_status_valid",
            ),
            models.CheckConstraint(condition=Q(segments__gte=1), name="message_segments_positive"),
            # Partial: the 100,000 rows of a launch carry neither, and pay for no index entry.
            models.UniqueConstraint(
                fields=["reference"],
                condition=Q(reference__isnull=False),
                name="message_unique_reference",
            ),
            models.UniqueConstraint(
                fields=["provider_sid"],
                condition=Q(provider_sid__isnull=False),
                name="message_unique_provider_sid",
            ),
        ]
        indexes = [
            models.Index(
                fields=["send_after", "id"],
                condition=Q(status="pending"),
                name="message_due_idx",
            ),
            models.Index(
                fields=["status", "updated_at"],
                condition=Q(status__in=["queued", "sending", "unknown", "sent"]),
                name="message_inflight_idx",
            ),
            models.Index(
                fields=["contact", "claimed_at"],
                condition=Q(claimed_at__isnull=False),
                name="message_contact_claimed_idx",
            ),
            # The overview's funnel counts a range's messages from the index alone.
            models.Index(
                fields=["created_at"],
                include=["status", "queued_at", "sent_at"],
                name="message_created_cover_idx",
            ),
            models.Index(
                fields=["sent_at"], condition=Q(sent_at__isnull=False), name="message_sent_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"message {self.pk} to {self.contact_id} ({self.status})"


# Where a message's life ends, and the states in which something may still happen to it.
FINAL_STATUSES = frozenset(
    {
        Message.Status.DELIVERED,
        Message.Status.UNDELIVERED,
        Message.Status.FAILED,
        Message.Status.CANCELED,
    }
)
IN_FLIGHT_STATUSES = (
    Message.Status.PENDING,
    Message.Status.QUEUED,
    Message.Status.SENDING,
    Message.Status.UNKNOWN,
)


class MessageTransition(models.Model):
    """One move of a message's state, with when and who moved it."""

    class Source(models.TextChoices):
        DISPATCHER = "dispatcher"
        WORKER = "worker"
        CALLBACK = "callback"
        RECONCILE = "reconcile"
        OPERATOR = "operator"

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="transitions")
    from_status = models.CharField(max_length=16)
    to_status = models.CharField(max_length=16)
    source = models.CharField(max_length=16, choices=Source.choices)
    detail = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField()

    class Meta:
        ordering = ["occurred_at", "id"]
        indexes = [models.Index(fields=["message", "occurred_at"], name="transition_message_idx")]

    def __str__(self) -> str:
        return f"{self.message_id}: {self.from_status} -> {self.to_status}"


class WebhookRequest(models.Model):
    """A raw provider webhook as received, stored before anything else looks at it."""

    class Kind(models.TextChoices):
        INBOUND = "inbound"
        STATUS = "status"

    class Outcome(models.TextChoices):
        RECEIVED = "received"
        REJECTED = "rejected"
        PROCESSED = "processed"
        DUPLICATE = "duplicate"
        IGNORED = "ignored"

    kind = models.CharField(max_length=8, choices=Kind.choices)
    url = models.CharField(max_length=2000)
    headers = models.JSONField(default=dict)
    body = models.TextField()
    dedup_key = models.CharField(max_length=200, blank=True, default="")
    outcome = models.CharField(max_length=12, choices=Outcome.choices, default=Outcome.RECEIVED)
    note = models.CharField(max_length=500, blank=True, default="")
    received_at = models.DateTimeField(auto_now_add=True)
    processing_ms = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            # The database decides which copy of a repeated webhook is the one processed.
            models.UniqueConstraint(
                fields=["kind", "dedup_key"],
                condition=Q(outcome="processed"),
                name="webhook_processed_once",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} webhook {self.pk} ({self.outcome})"


class SimulatedMessage(models.Model):
    """The simulator provider's own record of what it accepted (its side of the world)."""

    sid = models.CharField(max_length=64, unique=True)
    to = models.CharField(max_length=16, db_index=True)
    body = models.TextField()
    status = models.CharField(max_length=16)
    final_status = models.CharField(max_length=16)
    error_code = models.CharField(max_length=16, blank=True, default="")
    status_callback = models.CharField(max_length=2000)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.sid} to {self.to} ({self.status})"


class SmsTemplate(models.Model):
    """A message text that rule actions may send, by key, once a campaign manager approved it.

    The text is frozen once approved, so what was approved is what goes out (and a decision's
    actions, which name the key, replay to the same message); a new text is a new key.
    """

    key = models.SlugField(max_length=64, unique=True, help_text="What a rule action names.")
    body = models.TextField(help_text="Jinja, sandboxed; reads event, event_type, outcome, risk.")
    description = models.CharField(max_length=200, blank=True, default="")
    created_by = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    approved_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_by_label = models.CharField(max_length=150, blank=True, default="")
    approved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key

    @property
    def approved(self) -> bool:
        return self.approved_at is not None


class CampaignJob(models.Model):
    """Heavy work (preview, launch, CSV import) run by a worker on its own queue, with progress.

    At most one job runs per campaign (and one import at a time): the partial unique
    constraints below make the second request a conflict, decided by the database.
    """

    class Kind(models.TextChoices):
        PREVIEW = "preview"
        LAUNCH = "launch"
        IMPORT = "import"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    kind = models.CharField(max_length=8, choices=Kind.choices)
    campaign = models.ForeignKey(
        Campaign, null=True, blank=True, on_delete=models.CASCADE, related_name="jobs"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(null=True, blank=True)
    # The CSV of an import, kept only until the job ends.
    payload = models.TextField(blank=True, default="")
    result = models.JSONField(default=dict, blank=True)
    error = models.JSONField(default=dict, blank=True)
    requested_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by_label = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign"],
                condition=Q(status__in=["queued", "running"], campaign__isnull=False),
                name="campaignjob_one_active_per_campaign",
            ),
            models.UniqueConstraint(
                fields=["kind"],
                condition=Q(status__in=["queued", "running"], kind="import"),
                name="campaignjob_one_active_import",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["queued", "running", "succeeded", "failed"]),
                name="campaignjob_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} job {self.pk} ({self.status})"

    @property
    def active(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)
