"""Celery tasks: thin, idempotent wrappers over services, taking primitive ids.

Only Celery's autodiscovery imports this module; services enqueue these tasks by name
(`campaigns.enqueue`), and beat names them in `CELERY_BEAT_SCHEDULE`.
"""

from celery import shared_task
from django.conf import settings

import campaigns.providers.twilio  # noqa: F401 -- imported before the pool forks, not per child
from campaigns import services
from campaigns.enqueue import CAMPAIGN_JOB_RUN, MESSAGE_SEND, MESSAGES_SEND
from campaigns.providers.simulator import simulator_callback_task  # noqa: F401 -- registers it


@shared_task(name="campaigns.messages_dispatch", ignore_result=True)
def messages_dispatch_task() -> int:
    """Beat, every second: claim due messages and enqueue their sends."""
    return services.messages_dispatch()


@shared_task(name=MESSAGE_SEND, ignore_result=True)
def message_send_task(message_id: int) -> str:
    """Send one message; safe to run twice (the claim lets only one run reach the provider)."""
    return services.message_send(message_id=message_id)


@shared_task(name=MESSAGES_SEND, ignore_result=True)
def messages_send_task(message_ids: list[int]) -> dict[int, str]:
    """Send a batch of messages, paced; safe to run twice, like the single send."""
    return services.messages_send(message_ids=message_ids)


@shared_task(name="campaigns.messages_reconcile", ignore_result=True)
def messages_reconcile_task() -> dict[str, int]:
    """Beat: ask the provider about messages stuck in sending, unknown or sent."""
    return services.messages_reconcile()


@shared_task(
    name=CAMPAIGN_JOB_RUN,
    ignore_result=True,
    soft_time_limit=settings.CAMPAIGNS_HEAVY_SOFT_TIME_LIMIT_SECONDS,
    time_limit=settings.CAMPAIGNS_HEAVY_SOFT_TIME_LIMIT_SECONDS + 30,
)
def campaign_job_run_task(job_id: int) -> str:
    """A preview, launch or import (heavy queue); a second delivery finds it no longer queued."""
    return services.campaign_job_run(job_id=job_id)


@shared_task(name="campaigns.retention_purge", ignore_result=True)
def retention_purge_task() -> dict[str, int]:
    """Beat, daily: delete old raw webhooks and blank old message bodies, in batches."""
    return services.retention_purge()
