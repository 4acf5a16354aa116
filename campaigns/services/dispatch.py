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
    ids: list[int] = []
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
                ids += [row[0] for row in cursor.fetchall()]
        cursor.execute(
            "SELECT id FROM campaigns_message WHERE status = 'pending' AND campaign_id IS NULL "
            "AND send_after <= %s ORDER BY send_after, id LIMIT 500 FOR UPDATE SKIP LOCKED",
            [now],
        )
        ids += [row[0] for row in cursor.fetchall()]
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
    to_send = ids + stale
    if to_send:
        messages_send_on_commit(to_send)
    _campaigns_complete()
    return len(to_send)


def _campaigns_complete() -> None:
    """Running campaigns with nothing left to send are completed."""
    unfinished = Message.objects.filter(campaign_id=OuterRef("pk"), status__in=IN_FLIGHT_STATUSES)
    now = timezone.now()
    Campaign.objects.filter(status=Campaign.Status.RUNNING).exclude(Exists(unfinished)).update(
        status=Campaign.Status.COMPLETED, finished_at=now, updated_at=now
    )
