"""Sending one message: the send-time checks, the claim, the rate tokens, the provider call.

Never twice: a message row is claimed (queued -> sending, committed) before the provider is
called, and nothing but that conditional update can start a send. A re-run task, a duplicate
enqueue or a resumed campaign finds the row no longer `queued` and stops. A send whose outcome
is unknown is parked as `unknown` and reconciled by asking the provider, never retried blindly.
"""

import random
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from campaigns.audience import COUNTED_FOR_CAP
from campaigns.config import config_cached
from campaigns.guards import country_refusal
from campaigns.models import Contact, Message, MessageTransition
from campaigns.providers import ProviderError, ProviderOutcomeUnknown, provider_get
from campaigns.ratelimit import rate_limit_acquire
from campaigns.services.contacts import consent_refusal, contact_provider_error_apply
from campaigns.services.states import (
    Hold,
    S,
    campaign_status_hold,
    message_transition,
    messages_move,
)
from campaigns.windows import DEFAULT_WINDOW, SendWindow, inside_window, next_allowed
from core import telemetry


def _window_for(message: Message) -> SendWindow:
    if message.campaign is None:
        return DEFAULT_WINDOW
    return config_cached(message.campaign.config).send_window


def _eligibility(
    message: Message, contact: Contact, now: datetime, *, look_up: bool = True
) -> Hold | None:
    """Campaign state, destination country, consent, quiet hours and frequency cap, checked at
    send time (the allow-list may have changed since the message was created).

    `look_up=False` skips the checks that need queries (consent, cap): a quick first look.
    """
    campaign = message.campaign
    hold = campaign_status_hold(campaign.status if campaign is not None else None)
    if hold is not None:
        return hold
    refusal = country_refusal(phone=contact.phone, region=contact.region)
    if refusal:
        return Hold(to=S.CANCELED, reason=refusal)
    refusal = consent_refusal(contact=contact, topic=message.topic) if look_up else ""
    if refusal:
        return Hold(to=S.CANCELED, reason=refusal)
    window = _window_for(message)
    zones = contact.zones
    if not inside_window(now, zones, window):
        later = next_allowed(now, zones, window)
        if later is None:
            return Hold(to=S.CANCELED, reason="no_send_window")
        return Hold(to=S.PENDING, reason="quiet_hours", send_after=later)
    if campaign is not None and look_up:
        cap = config_cached(campaign.config).frequency_cap
        if cap is not None:
            recent = (
                Message.objects.filter(
                    COUNTED_FOR_CAP,
                    contact_id=contact.pk,
                    claimed_at__gte=now - timedelta(hours=cap.per_hours),
                )
                .exclude(pk=message.pk)
                .count()
            )
            if recent >= cap.max_messages:
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


def _claim_state(claimed: Message) -> Hold | object | None:
    """After the wait for tokens: None to send, a Hold to give the claim back, or _CLAIM_LOST
    when the message is no longer this claim's (one query)."""
    row = (
        Message.objects.filter(pk=claimed.pk)
        .values_list("status", "claimed_at", "campaign__status")
        .first()
    )
    if row is None or row[0] != S.SENDING or row[1] != claimed.claimed_at:
        return _CLAIM_LOST
    return campaign_status_hold(row[2])


@transaction.atomic
def _message_release(*, message_id: int, hold: Hold) -> None:
    """Undo a claim whose provider call was never made: the attempt does not count."""
    message = Message.objects.select_for_update().filter(pk=message_id, status=S.SENDING).first()
    if message is None:
        return
    _hold_apply(message, hold, fields={"attempts": message.attempts - 1, "claimed_at": None})


@transaction.atomic
def _message_claim(*, message_id: int, contact_id: int, provider: str) -> Message | Hold | None:
    """The never-twice step: queued -> sending, committed before the provider is called.

    The contact row is locked first, so two campaigns cannot both pass the frequency cap for
    the same person at the same moment.
    """
    contact = Contact.objects.select_for_update().get(pk=contact_id)
    message = (
        Message.objects.select_for_update(of=("self",))
        .select_related("campaign")
        .filter(pk=message_id, status=S.QUEUED)
        .first()
    )
    if message is None:
        return None
    now = timezone.now()
    hold = _eligibility(message, contact, now)
    if hold is not None:
        _hold_apply(message, hold)
        return hold
    messages_move(
        where="id = %s AND status = 'queued'",
        params=[message.pk],
        to=S.SENDING,
        source=MessageTransition.Source.WORKER,
        extra_set=", claimed_at = %s, attempts = attempts + 1, provider = %s",
        extra_params=[now, provider],
    )
    message.status, message.claimed_at, message.provider = S.SENDING, now, provider
    message.attempts += 1
    message.contact = contact
    return message


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


def message_send(*, message_id: int) -> str:
    """Send one queued message at most once; returns what happened (for logs and tests)."""
    message = Message.objects.select_related("campaign", "contact").filter(pk=message_id).first()
    if message is None or message.status != S.QUEUED:
        return "skipped"
    # A cheap look (no queries) before the claim, which repeats every check under its locks.
    hold = _eligibility(message, message.contact, timezone.now(), look_up=False)
    if hold is not None:
        _message_hold(message_id=message_id, hold=hold)
        return f"held:{hold.reason}"
    try:
        provider = provider_get()
    except ProviderError as error:  # misconfigured: hold the message, do not burn attempts
        later = timezone.now() + timedelta(seconds=60)
        _message_hold(
            message_id=message_id,
            hold=Hold(to=S.PENDING, reason=f"provider_{error.code}", send_after=later),
        )
        return f"held:provider_{error.code}"
    claimed = _message_claim(
        message_id=message_id, contact_id=message.contact_id, provider=provider.name
    )
    if claimed is None:
        return "skipped"
    if isinstance(claimed, Hold):
        return f"held:{claimed.reason}"
    # The tokens are taken last, right before the call, so the rate the provider sees is the
    # bucket's rate, not the bucket's rate smeared by how long each claim took to commit. The
    # wait stays well inside the sending timeout, so reconciliation never takes a claim that
    # is only waiting for its turn.
    key, rate = _rate_key(claimed)
    max_wait = min(
        settings.CAMPAIGNS_RATE_WAIT_MAX_SECONDS,
        max(
            0.0,
            settings.CAMPAIGNS_SENDING_TIMEOUT_SECONDS
            - settings.CAMPAIGNS_PROVIDER_TIMEOUT_SECONDS
            - 1,
        ),
    )
    if not rate_limit_acquire(key=key, rate=rate, cost=claimed.segments, max_wait=max_wait):
        _message_release(message_id=message_id, hold=Hold(to=S.PENDING, reason="rate_limited"))
        return "held:rate_limited"
    # The wait may have outlasted a pause or a cancel, or (a stalled process) the claim itself.
    state = _claim_state(claimed)
    if state is _CLAIM_LOST:
        return "skipped"
    if isinstance(state, Hold):
        _message_release(message_id=message_id, hold=state)
        return f"held:{state.reason}"
    try:
        receipt = provider.send(
            to=claimed.contact.phone,
            body=claimed.body,
            status_callback=status_callback_url(claimed.pk),
        )
    except ProviderOutcomeUnknown as error:
        _message_after_send(message_id=message_id, unknown=str(error))
        return "unknown"
    except ProviderError as error:
        _message_after_send(message_id=message_id, error=error)
        return f"error:{error.code}"
    _message_after_send(message_id=message_id, sid=receipt.sid)
    return "sent"


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
