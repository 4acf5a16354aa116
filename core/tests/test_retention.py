"""Idempotency records are kept IDEMPOTENCY_RETENTION_DAYS, then purged in audited batches."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from core.models import AuditEntry, IdempotencyRecord
from core.retention import RETENTION_PURGE_ACTION
from core.tasks import idempotency_records_purge_task

pytestmark = pytest.mark.django_db


def idempotency_records(count: int, *, age: timedelta, prefix: str) -> list[int]:
    records = IdempotencyRecord.objects.bulk_create(
        IdempotencyRecord(scope="key:test", key=f"{prefix}-{n}", fingerprint="f" * 64)
        for n in range(count)
    )
    ids = [record.pk for record in records]
    IdempotencyRecord.objects.filter(pk__in=ids).update(created_at=timezone.now() - age)
    return ids


def purge_entries() -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action=RETENTION_PURGE_ACTION).order_by("id"))


def test_it_purges_records_past_retention_in_batches_and_audits_each(settings):
    settings.IDEMPOTENCY_RETENTION_DAYS = 7
    settings.RETENTION_PURGE_BATCH_SIZE = 2
    idempotency_records(3, age=timedelta(days=8), prefix="old")
    kept = idempotency_records(2, age=timedelta(days=6), prefix="recent")

    deleted = idempotency_records_purge_task()

    assert deleted == 3
    assert sorted(IdempotencyRecord.objects.values_list("pk", flat=True)) == sorted(kept)
    entries = purge_entries()
    assert [entry.after["deleted"] for entry in entries] == [2, 1]
    assert {(entry.target_type, entry.actor_label) for entry in entries} == {
        ("idempotency_record", "system")
    }


def test_it_reports_a_run_that_found_nothing_to_purge():
    kept = idempotency_records(1, age=timedelta(hours=1), prefix="fresh")

    assert idempotency_records_purge_task() == 0

    assert list(IdempotencyRecord.objects.values_list("pk", flat=True)) == kept
    assert [entry.after["deleted"] for entry in purge_entries()] == [0]


def test_beat_runs_the_purge_daily():
    entry = settings.CELERY_BEAT_SCHEDULE["core-idempotency-purge"]

    assert entry["task"] == idempotency_records_purge_task.name
    assert entry["schedule"].hour == {3}
    assert entry["schedule"].minute == {10}
