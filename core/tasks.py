"""Celery tasks of the shared kernel: thin wrappers over its services, named for beat."""

from celery import shared_task

from core.retention import idempotency_records_purge


@shared_task(name="core.idempotency_records_purge", ignore_result=True)
def idempotency_records_purge_task() -> int:
    """Beat, daily: delete idempotency records past their retention, in audited batches."""
    return idempotency_records_purge().deleted
