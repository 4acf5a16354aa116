"""The message state machine: its tables, and the only two ways a message changes state.

Every move is recorded as a `MessageTransition` in the same statement or transaction as the
move itself, so the ledger of a message is complete by construction.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.utils import timezone

from campaigns.models import FINAL_STATUSES, Campaign, Message, MessageTransition
from core import telemetry

S = Message.Status
# Ranks order the states: a provider callback may only move a message to a higher rank, so a
# late `sent` never overwrites `delivered`. Final states share the top rank and never change.
RANK: dict[str, int] = {
    S.PENDING: 0,
    S.QUEUED: 1,
    S.SENDING: 2,
    S.UNKNOWN: 3,
    S.SENT: 4,
    S.DELIVERED: 5,
    S.UNDELIVERED: 5,
    S.FAILED: 5,
    S.CANCELED: 5,
}
# What our own code may do (callbacks use the ranks instead).
ALLOWED: dict[str, set[str]] = {
    S.PENDING: {S.QUEUED, S.CANCELED},
    S.QUEUED: {S.SENDING, S.PENDING, S.CANCELED},
    S.SENDING: {S.SENT, S.PENDING, S.FAILED, S.UNKNOWN, S.CANCELED},
    S.UNKNOWN: {S.SENT, S.PENDING, S.FAILED},
}
TWILIO_STATUS = {
    "accepted": S.QUEUED,
    "scheduled": S.QUEUED,
    "queued": S.QUEUED,
    "sending": S.SENDING,
    "sent": S.SENT,
    "delivered": S.DELIVERED,
    "read": S.DELIVERED,
    "undelivered": S.UNDELIVERED,
    "failed": S.FAILED,
    "canceled": S.CANCELED,
}


@dataclass(frozen=True)
class Hold:
    """Why a queued message does not go now: back to pending (later) or canceled."""

    to: str
    reason: str
    send_after: datetime | None = None


def campaign_status_hold(status: str | None) -> Hold | None:
    """Where a message goes while its campaign is not running (None: no campaign, or running)."""
    if status is None or status == Campaign.Status.RUNNING:
        return None
    if status == Campaign.Status.CANCELED:
        return Hold(to=S.CANCELED, reason="campaign_canceled")
    return Hold(to=S.PENDING, reason=f"campaign_{status}")


def message_transition(
    message: Message,
    to: str,
    source: str,
    *,
    fields: dict[str, Any] | None = None,
    detail: dict[str, Any] | None = None,
    ranked: bool = False,
) -> None:
    """Move one locked message and record the move.

    Provider statuses move by rank (`ranked=True`); our own moves must be listed in ALLOWED.
    """
    if not ranked and to not in ALLOWED.get(message.status, set()):
        raise RuntimeError(f"Message {message.pk}: {message.status} -> {to} is not allowed.")
    now = timezone.now()
    MessageTransition.objects.create(
        message=message,
        from_status=message.status,
        to_status=to,
        source=source,
        detail=detail or {},
        occurred_at=now,
    )
    message.status = to
    updates = {"status": to, **(fields or {})}
    if to in FINAL_STATUSES and "finished_at" not in updates:
        updates["finished_at"] = now
    for name, value in updates.items():
        setattr(message, name, value)
    message.save(update_fields=[*updates, "updated_at"])
    telemetry.messages_observe(status=to)


def messages_move(
    *,
    where: str,
    params: list[Any],
    to: str,
    source: str,
    extra_set: str = "",
    extra_params: list[Any] | None = None,
    detail: str = "{}",
) -> int:
    """Move messages in one statement and record one transition per moved message."""
    sql = f"""
        WITH old AS (
            SELECT id, status FROM campaigns_message WHERE {where} FOR UPDATE
        ), moved AS (
            UPDATE campaigns_message m SET status = %s, updated_at = now() {extra_set}
            FROM old WHERE m.id = old.id RETURNING m.id, old.status AS from_status
        )
        INSERT INTO campaigns_messagetransition
            (message_id, from_status, to_status, source, detail, occurred_at)
        SELECT id, from_status, %s, %s, %s::jsonb, now() FROM moved
    """  # noqa: S608 -- `where` and `extra_set` are constants of the services, values are bound
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, to, *(extra_params or []), to, source, detail])
        telemetry.messages_observe(status=to, count=cursor.rowcount)
        return cursor.rowcount
