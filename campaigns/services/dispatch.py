"""The dispatcher: claims due messages (SKIP LOCKED) and enqueues their sends."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from campaigns.config import config_cached
from campaigns.enqueue import messages_send_on_commit
from campaigns.models import IN_FLIGHT_STATUSES, Campaign, Message, MessageTransition
from campaigns.services.states import S, messages_move


@transaction.atomic
def messages_dispatch(*, now: datetime | None = None) -> int:
    """Claim due messages (SKIP LOCKED, so dispatchers never block each other) and enqueue.

    Each campaign gets at most `rate x DISPATCH_AHEAD_SECONDS` messages in the queue, so a
    pause or cancel has little to take back. Queued messages whose task was lost (a killed
    worker) are enqueued again; the claim makes the duplicate harmless.
    """
    now = now or timezone.now()
    for scheduled in Campaign.objects.filter(status=Campaign.Status.SCHEDULED):
        start_at = config_cached(scheduled.config).start_at
        if start_at is None or start_at <= now:
            Campaign.objects.filter(pk=scheduled.pk, status=Campaign.Status.SCHEDULED).update(
                status=Campaign.Status.RUNNING, updated_at=now
            )
    batches: list[list[int]] = []
    ahead = settings.CAMPAIGNS_DISPATCH_AHEAD_SECONDS
    running = Campaign.objects.filter(status=Campaign.Status.RUNNING).only("id", "config")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT campaign_id, count(*) FROM campaigns_message "
            "WHERE status = 'queued' AND campaign_id IS NOT NULL GROUP BY campaign_id"
        )
        queued = dict(cursor.fetchall())
        for campaign in running:
            rate = config_cached(campaign.config).rate_per_second
            budget = max(int(rate * ahead) - queued.get(campaign.pk, 0), 0)
            if budget:
                cursor.execute(
                    "SELECT id FROM campaigns_message WHERE status = 'pending' "
                    "AND campaign_id = %s AND send_after <= %s ORDER BY send_after, id "
                    "LIMIT %s FOR UPDATE SKIP LOCKED",
                    [campaign.pk, now, budget],
                )
                batches += _batched([row[0] for row in cursor.fetchall()], _batch_size(rate))
        cursor.execute(
            "SELECT id FROM campaigns_message WHERE status = 'pending' AND campaign_id IS NULL "
            "AND send_after <= %s ORDER BY send_after, id LIMIT 500 FOR UPDATE SKIP LOCKED",
            [now],
        )
        transactional = _batch_size(settings.CAMPAIGNS_TRANSACTIONAL_RATE_PER_SECOND)
        batches += _batched([row[0] for row in cursor.fetchall()], transactional)
    ids = [message_id for batch in batches for message_id in batch]
    if ids:
        messages_move(
            where="id = ANY(%s)",
            params=[ids],
            to=S.QUEUED,
            source=MessageTransition.Source.DISPATCHER,
            extra_set=", queued_at = now()",
        )
    # Lost tasks: still queued long after being enqueued.
    stale = list(
        Message.objects.select_for_update(skip_locked=True)
        .filter(
            status=S.QUEUED,
            queued_at__lt=now - timedelta(seconds=settings.CAMPAIGNS_REQUEUE_AFTER_SECONDS),
        )
        .values_list("id", flat=True)[:1000]
    )
    if stale:
        Message.objects.filter(id__in=stale).update(queued_at=now)
        batches += _batched(stale, settings.CAMPAIGNS_SEND_BATCH_SIZE)
    messages_send_on_commit(batches)
    _campaigns_complete()
    return len(ids) + len(stale)


def _batch_size(rate: int) -> int:
    """Half a second of the bucket's rate, at most CAMPAIGNS_SEND_BATCH_SIZE: a batch paces its
    sends itself, so fewer, larger tasks cost less than one a message, while batches short in
    time let every worker share the sending."""
    return max(1, min(settings.CAMPAIGNS_SEND_BATCH_SIZE, rate // 2))


def _batched(ids: list[int], size: int) -> list[list[int]]:
    return [ids[start : start + size] for start in range(0, len(ids), size)]


def _campaigns_complete() -> None:
    """Running campaigns with nothing left to send are completed."""
    unfinished = Message.objects.filter(campaign_id=OuterRef("pk"), status__in=IN_FLIGHT_STATUSES)
    now = timezone.now()
    Campaign.objects.filter(status=Campaign.Status.RUNNING).exclude(Exists(unfinished)).update(
        status=Campaign.Status.COMPLETED, finished_at=now, updated_at=now
    )
