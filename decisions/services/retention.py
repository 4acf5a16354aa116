"""Retention of event payloads: after RETENTION_EVENT_PAYLOAD_DAYS an event keeps its type, time,
decision and trace, but its payload (and the features it sent for scoring) are blanked, batch by
batch, each batch audited. Its decision can then no longer be replayed (selectors say why)."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.audit import audit_record
from core.retention import RETENTION_PURGE_ACTION, PurgeReport
from decisions.models import Event


def event_payloads_purge(*, now: datetime | None = None) -> PurgeReport:
    """Blank the payloads of events received more than RETENTION_EVENT_PAYLOAD_DAYS ago."""
    now = now or timezone.now()
    older_than = now - timedelta(days=settings.RETENTION_EVENT_PAYLOAD_DAYS)
    expired = Event.objects.filter(received_at__lt=older_than, payload_purged_at__isnull=True)
    batch_size = settings.RETENTION_PURGE_BATCH_SIZE
    blanked = 0
    while True:
        with transaction.atomic():
            batch = list(
                expired.order_by("pk")
                .select_for_update(skip_locked=True)
                .values_list("pk", flat=True)[:batch_size]
            )
            count = Event.objects.filter(pk__in=batch).update(
                payload={}, risk_request=None, payload_purged_at=now
            )
            audit_record(
                actor=None,
                action=RETENTION_PURGE_ACTION,
                target_type="event_payload",
                target_id="*",
                after={"blanked": count, "older_than": older_than.isoformat()},
            )
        blanked += count
        if len(batch) < batch_size:
            return PurgeReport(kind="event_payload", deleted=blanked, older_than=older_than)
