"""Retention for the campaigns app: raw webhooks and message bodies are kept only so long.

Beat runs `retention_purge` daily. It deletes raw webhooks older than RETENTION_WEBHOOK_DAYS
and blanks the bodies of finished messages older than RETENTION_MESSAGE_BODY_DAYS (the row,
its status and its transitions stay: the counts and the delivery record are not personal
text). Each batch of RETENTION_PURGE_BATCH_SIZE rows is its own short transaction, walked by primary
key, so a large backlog never holds long locks; the counts go into the audit trail.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from campaigns.models import FINAL_STATUSES, Message, WebhookRequest
from core.audit import audit_record


def _in_batches(rows: QuerySet, **update: str) -> int:
    """Delete (no `update`) or update the rows, a batch of primary keys at a time."""
    done = 0
    last = 0
    size = settings.RETENTION_PURGE_BATCH_SIZE
    while True:
        ids = list(rows.filter(pk__gt=last).order_by("pk").values_list("pk", flat=True)[:size])
        if not ids:
            return done
        with transaction.atomic():
            batch = rows.model.objects.filter(pk__in=ids)
            if update:
                done += batch.update(**update)
            else:
                done += batch.delete()[0]
        last = ids[-1]


def retention_purge(*, now: datetime | None = None) -> dict[str, int]:
    """Delete old raw webhooks, blank old message bodies; the counts are audited."""
    now = now or timezone.now()
    webhooks = WebhookRequest.objects.filter(
        received_at__lt=now - timedelta(days=settings.RETENTION_WEBHOOK_DAYS)
    )
    bodies = Message.objects.filter(
        created_at__lt=now - timedelta(days=settings.RETENTION_MESSAGE_BODY_DAYS),
        status__in=list(FINAL_STATUSES),
    ).exclude(body="")
    counts = {
        "webhooks_deleted": _in_batches(webhooks),
        "message_bodies_blanked": _in_batches(bodies, body=""),
    }
    with transaction.atomic():
        audit_record(
            actor=None,
            action="retention.purge",
            target_type="retention",
            target_id="campaigns",
            after={
                **counts,
                "webhook_days": settings.RETENTION_WEBHOOK_DAYS,
                "message_body_days": settings.RETENTION_MESSAGE_BODY_DAYS,
            },
        )
    return counts
