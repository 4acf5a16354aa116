"""Sending messages: the send-time checks, the claim, the paced rate slots, the provider call.

Never twice: a message row is claimed (queued -> sending, committed) before the provider is
called, and nothing but that conditional update can start a send. A re-run task, a duplicate
enqueue or a resumed campaign finds the row no longer `queued` and stops. A send whose outcome
is unknown is parked as `unknown` and reconciled by asking the provider, never retried blindly.

Messages go in batches (one task per batch, `messages_send`): one transaction claims the whole
batch, one reservation on the bucket's schedule gives each message its slot, and the sends that
succeeded are recorded together, every CLAIM_CHECK_SECONDS, in one statement.
"""

import json
import random
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import accumulate
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from campaigns.audience import recent_message_counts
from campaigns.config import config_cached
from campaigns.guards import country_refusal
from campaigns.models import Contact, Message, MessageTransition
from campaigns.providers import ProviderError, ProviderOutcomeUnknown, SmsProvider, provider_get
from campaigns.ratelimit import rate_limit_reserve
from campaigns.services.contacts import (
    consent_refusal,
    contact_provider_error_apply,
    subscription_statuses,
)
from campaigns.services.states import (
    Hold,
    S,
    campaign_status_hold,
    message_transition,
    messages_move,
)
from campaigns.windows import DEFAULT_WINDOW, SendWindow, inside_window, next_allowed
from core import telemetry

# How often a batch re-reads its claims while it paces its sends (a pause or cancel stops the
# rest of the batch within this long), and records the sends that succeeded.
CLAIM_CHECK_SECONDS = 0.2


def _window_for(message: Message) -> SendWindow:
    if message.campaign is None:
        return DEFAULT_WINDOW
    return config_cached(message.campaign.config).send_window


@dataclass
class _Lookups:
    """What the claim reads for a whole batch at once: consent, and recent sends per contact."""

    statuses: dict[tuple[int, str], str]
    recent: dict[int, dict[int, int]]  # per_hours -> contact id -> messages counted for the cap
    claimed: dict[int, int] = field(default_factory=lambda: defaultdict(int))  # in this batch


def _lookups(messages: Sequence[Message], now: datetime) -> _Lookups:
    contact_ids = {message.contact_id for message in messages}
    windows = {
        cap.per_hours
        for message in messages
        if message.campaign is not None
        and (cap := config_cached(message.campaign.config).frequency_cap) is not None
    }
    # The batch's own messages are queued, never counted; excluding them keeps that exact.
    batch = [message.pk for message in messages]
    return _Lookups(
        statuses=subscription_statuses(
            contact_ids=contact_ids, topics={message.topic for message in messages}
        ),
        recent={
            hours: recent_message_counts(
                since=now - timedelta(hours=hours), contact_ids=list(contact_ids), exclude=batch
            )
            for hours in windows
        },
    )


def _eligibility(
    message: Message, contact: Contact, now: datetime, lookups: _Lookups | None = None
) -> Hold | None:
    """Campaign state, destination country, consent, quiet hours and frequency cap, checked at
    send time (the allow-list may have changed since the message was created).

    Without `lookups` the checks that need queries (consent, cap) are skipped: a quick first
    look, repeated in full under the claim's locks.
    """
    campaign = message.campaign
    hold = campaign_status_hold(campaign.status if campaign is not None else None)
    if hold is not None:
        return hold
    refusal = country_refusal(phone=contact.phone, region=contact.region)
    if refusal:
        return Hold(to=S.CANCELED, reason=refusal)
    if lookups is not None:
        refusal = consent_refusal(contact=contact, topic=message.topic, statuses=lookups.statuses)
        if refusal:
            return Hold(to=S.CANCELED, reason=refusal)
    window = _window_for(message)
    zones = contact.zones
    if not inside_window(now, zones, window):
        later = next_allowed(now, zones, window)
        if later is None:
            return Hold(to=S.CANCELED, reason="no_send_window")
        return Hold(to=S.PENDING, reason="quiet_hours", send_after=later)
    if campaign is not None and lookups is not None:
        cap = config_cached(campaign.config).frequency_cap
        if cap is not None:
            recent = lookups.recent[cap.per_hours].get(contact.pk, 0)
            if recent + lookups.claimed[contact.pk] >= cap.max_messages:
                return Hold(to=S.CANCELED, reason="frequency_cap")
    return None


@transaction.atomic
def _message_hold(*, message_id: int, hold: Hold) -> None:
    message = Message.objects.select_for_update().filter(pk=message_id, status=S.QUEUED).first()
    if message is not None:
        _hold_apply(message, hold)


def _hold_apply(message: Message, hold: Hold, *, fields: dict[str, Any] | None = None) -> None:
    fields = dict(fields or {})
    if hold.to == S.CANCELED:
        fields["cancel_reason"] = hold.reason
    if hold.send_after is not None:
        fields["send_after"] = hold.send_after
    message_transition(
        message,
        hold.to,
        MessageTransition.Source.WORKER,
        fields=fields,
        detail={"reason": hold.reason},
    )


_CLAIM_LOST = object()


def _claim_states(claimed: Sequence[Message]) -> dict[int, Hold | object | None]:
    """Before a send: None to send, a Hold to give the claim back, or _CLAIM_LOST when the
    message is no longer this claim's (reconciliation took it). One query for many."""
    rows = Message.objects.filter(pk__in=[message.pk for message in claimed]).values_list(
        "pk", "status", "claimed_at", "campaign__status"
    )
    current = {pk: (status, claimed_at, campaign) for pk, status, claimed_at, campaign in rows}
    states: dict[int, Hold | object | None] = {}
    for message in claimed:
        row = current.get(message.pk)
        if row is None or row[0] != S.SENDING or row[1] != message.claimed_at:
            states[message.pk] = _CLAIM_LOST
        else:
            states[message.pk] = campaign_status_hold(row[2])
    return states


@transaction.atomic
def _message_release(*, message_id: int, hold: Hold) -> None:
    """Undo a claim whose provider call was never made: the attempt does not count."""
    message = Message.objects.select_for_update().filter(pk=message_id, status=S.SENDING).first()
    if message is None:
        return
    _hold_apply(message, hold, fields={"attempts": message.attempts - 1, "claimed_at": None})


@transaction.atomic
def _messages_claim(
    messages: Sequence[Message], *, provider: str
) -> tuple[list[Message], dict[int, Hold]]:
    """The never-twice step: queued -> sending, committed before the provider is called.

    The contact rows are locked first (in id order, so batches never deadlock), so two
    campaigns cannot both pass the frequency cap for the same person at the same moment.
    Returns the claimed messages, in id order, and the holds of the others.
    """
    contacts = {
        contact.pk: contact
        for contact in Contact.objects.select_for_update()
        .filter(pk__in={message.contact_id for message in messages})
        .order_by("pk")
    }
    locked = list(
        Message.objects.select_for_update(of=("self",))
        .select_related("campaign")
        .filter(pk__in=[message.pk for message in messages], status=S.QUEUED)
        .order_by("pk")
    )
    now = timezone.now()
    lookups = _lookups(locked, now)
    claimed: list[Message] = []
    holds: dict[int, Hold] = {}
    for message in locked:
        contact = contacts[message.contact_id]
        hold = _eligibility(message, contact, now, lookups)
        if hold is not None:
            _hold_apply(message, hold)
            holds[message.pk] = hold
            continue
        lookups.claimed[contact.pk] += 1
        message.status, message.claimed_at, message.provider = S.SENDING, now, provider
        message.attempts += 1
        message.contact = contact
        claimed.append(message)
    if claimed:
        messages_move(
            where="id = ANY(%s) AND status = 'queued'",
            params=[[message.pk for message in claimed]],
            to=S.SENDING,
            source=MessageTransition.Source.WORKER,
            extra_set=", claimed_at = %s, attempts = attempts + 1, provider = %s",
            extra_params=[now, provider],
        )
    return claimed, holds


def status_callback_url(message_id: int) -> str:
    """Where the provider reports on a message; our id rides along, so a callback that
    overtakes the provider's answer still finds its message."""
    base = settings.PUBLIC_BASE_URL.rstrip("/")
    return f"{base}/webhooks/twilio/status/?{urlencode({'message': message_id})}"


def _rate_key(message: Message) -> tuple[str, int]:
    if message.campaign_id is None:
        return "transactional", settings.CAMPAIGNS_TRANSACTIONAL_RATE_PER_SECOND
    assert message.campaign is not None
    return f"campaign:{message.campaign_id}", config_cached(message.campaign.config).rate_per_second


def _max_wait() -> float:
    """The longest a claimed message may wait for its slot: well inside the sending timeout, so
    reconciliation never takes a claim that is only waiting for its turn."""
    return min(
        settings.CAMPAIGNS_RATE_WAIT_MAX_SECONDS,
        max(
            0.0,
            settings.CAMPAIGNS_SENDING_TIMEOUT_SECONDS
            - settings.CAMPAIGNS_PROVIDER_TIMEOUT_SECONDS
            - 1,
        ),
    )


def message_send(*, message_id: int) -> str:
    """Send one queued message at most once; returns what happened (for logs and tests)."""
    return messages_send(message_ids=[message_id])[message_id]


def messages_send(*, message_ids: Sequence[int]) -> dict[int, str]:
    """Send queued messages, each at most once, paced by its bucket; what happened to each."""
    outcomes = dict.fromkeys(message_ids, "skipped")
    now = timezone.now()
    candidates: list[Message] = []
    queued = Message.objects.select_related("campaign", "contact").filter(
        pk__in=message_ids, status=S.QUEUED
    )
    for message in queued.order_by("pk"):
        # A cheap look (no queries) before the claim, which repeats every check under its locks.
        hold = _eligibility(message, message.contact, now)
        if hold is not None:
            _message_hold(message_id=message.pk, hold=hold)
            outcomes[message.pk] = f"held:{hold.reason}"
        else:
            candidates.append(message)
    if not candidates:
        return outcomes
    try:
        provider = provider_get()
    except ProviderError as error:  # misconfigured: hold the messages, do not burn attempts
        later = timezone.now() + timedelta(seconds=60)
        hold = Hold(to=S.PENDING, reason=f"provider_{error.code}", send_after=later)
        for message in candidates:
            _message_hold(message_id=message.pk, hold=hold)
            outcomes[message.pk] = f"held:{hold.reason}"
        return outcomes
    claimed, holds = _messages_claim(candidates, provider=provider.name)
    outcomes.update({pk: f"held:{hold.reason}" for pk, hold in holds.items()})
    buckets: dict[tuple[str, int], list[Message]] = defaultdict(list)
    for message in claimed:
        buckets[_rate_key(message)].append(message)
    for (key, rate), group in buckets.items():
        outcomes.update(_paced_send(provider, group, key=key, rate=rate))
    return outcomes


def _paced_send(
    provider: SmsProvider, claimed: list[Message], *, key: str, rate: int
) -> dict[int, str]:
    """Reserve the group's slots on the bucket's schedule, then send each message in its slot.

    The slots are reserved after the claim, right before the calls, so the rate the provider
    sees is the schedule's, not the schedule's smeared by how long the claim took to commit.
    """
    outcomes: dict[int, str] = {}
    costs = [message.segments for message in claimed]
    last_offset = (sum(costs) - costs[-1]) / rate
    wait = rate_limit_reserve(
        key=key, rate=rate, cost=sum(costs), max_wait=_max_wait() - last_offset
    )
    if wait is None:
        hold = Hold(to=S.PENDING, reason="rate_limited")
        for message in claimed:
            _message_release(message_id=message.pk, hold=hold)
            outcomes[message.pk] = f"held:{hold.reason}"
        return outcomes
    start = time.monotonic() + wait
    sent: list[tuple[int, str]] = []
    states: dict[int, Hold | object | None] = {}
    checked_at = float("-inf")
    for index, (message, offset) in enumerate(
        zip(claimed, accumulate(costs, initial=0), strict=False)
    ):
        pause = start + offset / rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        # The wait may have outlasted a pause or a cancel, or (a stalled process) the claim.
        if time.monotonic() - checked_at >= CLAIM_CHECK_SECONDS:
            _messages_sent(sent)
            sent = []
            states = _claim_states(claimed[index:])
            checked_at = time.monotonic()
        state = states[message.pk]
        if state is _CLAIM_LOST:
            continue  # outcome stays "skipped"
        if isinstance(state, Hold):
            _message_release(message_id=message.pk, hold=state)
            outcomes[message.pk] = f"held:{state.reason}"
            continue
        outcomes[message.pk] = _provider_call(provider, message, sent)
    _messages_sent(sent)
    return outcomes


def _provider_call(provider: SmsProvider, message: Message, sent: list[tuple[int, str]]) -> str:
    """One provider call; a receipt joins `sent` (recorded with others), the rest at once."""
    try:
        receipt = provider.send(
            to=message.contact.phone,
            body=message.body,
            status_callback=status_callback_url(message.pk),
        )
    except ProviderOutcomeUnknown as error:
        _message_after_send(message_id=message.pk, unknown=str(error))
        return "unknown"
    except ProviderError as error:
        _message_after_send(message_id=message.pk, error=error)
        return f"error:{error.code}"
    sent.append((message.pk, receipt.sid))
    return "sent"


@transaction.atomic
def _messages_sent(sent: list[tuple[int, str]]) -> None:
    """Record provider receipts: sending/unknown -> sent in one statement; a message a callback
    already moved on keeps its (higher) state and gets its SID.

    The commit does not wait for the disk (synchronous_commit off for this transaction): a
    pacing thread that waited for an fsync (3-80 ms here, more in a hiccup) sent its overdue
    slots back to back afterwards. A receipt lost in a database crash is not lost for good: the
    message stays `sending`, and reconciliation asks the provider, as after a killed worker.
    The claim, which never-twice rests on, still commits synchronously.
    """
    if not sent:
        return
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit = off")
    sids = dict(sent)
    moved = messages_move(
        where="id = ANY(%s) AND status IN ('sending', 'unknown')",
        params=[list(sids)],
        to=S.SENT,
        source=MessageTransition.Source.WORKER,
        extra_set=", provider_sid = (%s::jsonb ->> m.id::text), sent_at = now()",
        extra_params=[json.dumps({str(pk): sid for pk, sid in sent})],
    )
    if moved == len(sids):
        return
    for pk in Message.objects.filter(pk__in=sids, provider_sid__isnull=True).values_list(
        "pk", flat=True
    ):
        _message_after_send(message_id=pk, sid=sids[pk])


def retry_delay(attempts: int) -> float:
    """Exponential backoff with jitter: base * 2^(n-1), capped, then scaled by 0.5..1."""
    delay = min(
        settings.CAMPAIGNS_RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0),
        settings.CAMPAIGNS_RETRY_MAX_SECONDS,
    )
    return delay * random.uniform(0.5, 1.0)


@transaction.atomic
def _message_after_send(
    *,
    message_id: int,
    sid: str = "",
    error: ProviderError | None = None,
    unknown: str = "",
) -> None:
    """Record what the provider call did."""
    source = MessageTransition.Source.WORKER
    if sid and messages_move(
        where="id = %s AND status IN ('sending', 'unknown')",
        params=[message_id],
        to=S.SENT,
        source=source,
        extra_set=", provider_sid = %s, sent_at = now()",
        extra_params=[sid],
    ):
        return  # the usual case, in one statement
    message = Message.objects.select_for_update().select_related("contact").get(pk=message_id)
    if sid:
        if message.status in (S.SENDING, S.UNKNOWN):
            message_transition(
                message, S.SENT, source, fields={"provider_sid": sid, "sent_at": timezone.now()}
            )
        elif not message.provider_sid:  # a callback overtook us; keep its (higher) state
            message.provider_sid = sid
            message.sent_at = message.sent_at or timezone.now()
            message.save(update_fields=["provider_sid", "sent_at", "updated_at"])
        return
    if message.status not in (S.SENDING, S.UNKNOWN):
        return
    if unknown:
        if message.status == S.SENDING:
            message_transition(message, S.UNKNOWN, source, detail={"error": unknown[:300]})
        return
    assert error is not None
    telemetry.provider_error_observe(code=error.code)
    detail = {"code": error.code, "error": error.message[:300]}
    if error.transient and message.attempts < settings.CAMPAIGNS_MAX_ATTEMPTS:
        later = timezone.now() + timedelta(seconds=retry_delay(message.attempts))
        message_transition(
            message,
            S.PENDING,
            source,
            fields={
                "send_after": later,
                "error_code": error.code,
                "error_message": error.message[:500],
            },
            detail={**detail, "retry_at": later.isoformat()},
        )
        return
    message_transition(
        message,
        S.FAILED,
        source,
        fields={"error_code": error.code, "error_message": error.message[:500]},
        detail=detail,
    )
    contact_provider_error_apply(contact=message.contact, code=error.code, message_id=message.pk)
