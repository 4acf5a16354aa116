"""Deleting what is kept no longer than a retention setting: in batches, each batch audited.

Each batch is one transaction that deletes at most `batch_size` rows and records how many in
the audit trail, so a long purge never holds one huge lock and the trail accounts for every row
that went, even if the run stops half-way. Every run writes at least one entry (0 when there was
nothing to purge), so the trail also shows that the purge ran.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from core.audit import audit_record
from core.models import IdempotencyRecord

RETENTION_PURGE_ACTION = "retention.purge"


@dataclass(frozen=True)
class PurgeReport:
    kind: str
    deleted: int
    older_than: datetime


def rows_purge(
    *,
    queryset: models.QuerySet,
    kind: str,
    date_field: str,
    older_than: datetime,
    batch_size: int | None = None,
) -> PurgeReport:
    """Delete the rows of `queryset` whose `date_field` is before `older_than`, batch by batch."""
    batch_size = batch_size or settings.RETENTION_PURGE_BATCH_SIZE
    expired = queryset.filter(**{f"{date_field}__lt": older_than}).order_by("pk")
    deleted = 0
    while True:
        with transaction.atomic():
            # SKIP LOCKED: a row some request is still working on waits for the next run.
            batch = list(
                expired.select_for_update(skip_locked=True).values_list("pk", flat=True)[
                    :batch_size
                ]
            )
            count = queryset.model.objects.filter(pk__in=batch).delete()[0] if batch else 0
            audit_record(
                actor=None,
                action=RETENTION_PURGE_ACTION,
                target_type=kind,
                target_id="*",
                after={"deleted": count, "older_than": older_than.isoformat()},
            )
        deleted += count
        if len(batch) < batch_size:
            return PurgeReport(kind=kind, deleted=deleted, older_than=older_than)


def idempotency_records_purge(*, now: datetime | None = None) -> PurgeReport:
    """Forget Idempotency-Keys older than IDEMPOTENCY_RETENTION_DAYS (a retry that late is new)."""
    now = now or timezone.now()
    return rows_purge(
        queryset=IdempotencyRecord.objects.all(),
        kind="idempotency_record",
        date_field="created_at",
        older_than=now - timedelta(days=settings.IDEMPOTENCY_RETENTION_DAYS),
    )
