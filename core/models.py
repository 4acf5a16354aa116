"""The shared kernel's state: API keys, idempotency claims and the audit trail."""

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone
from rest_framework_api_key.models import AbstractAPIKey

from core.access import SCOPE_DESCRIPTIONS, codename


class Access(models.Model):
    """No rows: it carries one Django permission per scope, which roles (groups) grant."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [(codename(name), text) for name, text in SCOPE_DESCRIPTIONS.items()]

    def __str__(self) -> str:
        return "access"


class ApiKey(AbstractAPIKey):
    """An integrator's key: stored hashed, shown once, revocable, limited to its scopes."""

    scopes = ArrayField(
        models.CharField(max_length=32),
        default=list,
        blank=True,
        help_text="What the key may do; a key without scopes can do nothing.",
    )
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "API key"
        verbose_name_plural = "API keys"


class IdempotencyRecord(models.Model):
    """One Idempotency-Key per client: its request fingerprint and, once done, the response."""

    class State(models.TextChoices):
        IN_FLIGHT = "in_flight"
        COMPLETED = "completed"

    scope = models.CharField(max_length=100, help_text="The client: an API key or a user.")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of method, path and body.")
    state = models.CharField(max_length=16, choices=State.choices, default=State.IN_FLIGHT)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(
        blank=True, default="", help_text="The JSON exactly as it was sent, replayed byte for byte."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scope", "key"], name="idempotency_unique_scope_key"),
        ]

    def __str__(self) -> str:
        return f"{self.scope}:{self.key} ({self.state})"


class AuditEntry(models.Model):
    """Append-only: who changed what, before and after, written in the change's transaction.

    A database trigger refuses UPDATE and DELETE, and each entry carries the hash of the one
    before it (`manage.py audit_verify` walks the chain). The actor is kept without a foreign-key
    constraint, so deleting a user touches no entry and leaves its actor_label as it was.
    """

    occurred_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_label = models.CharField(max_length=150, help_text="User name, API key name or 'system'.")
    action = models.CharField(max_length=64)
    target_type = models.CharField(max_length=64)
    target_id = models.CharField(max_length=200)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    request_id = models.CharField(max_length=128, blank=True, default="")
    previous_hash = models.CharField(max_length=64, blank=True, default="")
    entry_hash = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [models.Index(fields=["target_type", "target_id"], name="audit_target_idx")]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.actor_label} {self.action} {self.target_type}:{self.target_id}"
