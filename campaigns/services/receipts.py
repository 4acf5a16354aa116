"""What comes back: delivery receipts and inbound SMS through the webhooks, and reconciliation
of messages whose outcome we do not know."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from campaigns.exceptions import InvalidPhone
from campaigns.models import (
    FINAL_STATUSES,
    ConsentEvent,
    Contact,
    Message,
    MessageTransition,
    WebhookRequest,
)
from campaigns.phones import phone_normalize
from campaigns.providers import ProviderError, ProviderStatus, SmsProvider, provider_get
from campaigns.services.contacts import consent_apply, contact_fields, contact_provider_error_apply
from campaigns.services.states import RANK, TWILIO_STATUS, S, message_transition
from core import telemetry
from core.audit import audit_record

logger = structlog.get_logger(__name__)

STOP_KEYWORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
)
START_KEYWORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_KEYWORDS = frozenset({"HELP", "INFO"})


def _status_apply(message: Message, status: ProviderStatus, source: str) -> bool:
    """Apply a provider status to a locked message by rank; True when it moved."""
    target = TWILIO_STATUS.get(status.status)
    if target is None:
        return False
    fields: dict[str, Any] = {}
    if status.sid and not message.provider_sid:
        fields["provider_sid"] = status.sid
        fields["sent_at"] = message.sent_at or timezone.now()
    if status.error_code:
        fields["error_code"] = status.error_code
    if message.status in FINAL_STATUSES or RANK[target] <= RANK[message.status]:
        if fields and message.status not in FINAL_STATUSES:
            for name, value in fields.items():
                setattr(message, name, value)
            message.save(update_fields=[*fields, "updated_at"])
        return False
    message_transition(
        message,
        target,
        source,
        fields=fields,
        detail={"provider_status": status.status, "error_code": status.error_code},
        ranked=True,
    )
    if target in (S.UNDELIVERED, S.FAILED) and status.error_code:
        telemetry.provider_error_observe(code=status.error_code)
        contact_provider_error_apply(
            contact=message.contact, code=status.error_code, message_id=message.pk
        )
    return True


@dataclass(frozen=True)
class WebhookResult:
    outcome: str
    reply: str = ""


def webhook_store(*, kind: str, url: str, headers: dict[str, str], body: str) -> WebhookRequest:
    """Store a webhook as received, committed at once, before anything else looks at it."""
    return WebhookRequest.objects.create(kind=kind, url=url[:2000], headers=headers, body=body)


def webhook_reject(
    *, kind: str, url: str, headers: dict[str, str], body: str, note: str
) -> WebhookRequest:
    """Keep a refused webhook (bad signature) for the record, in the bounded form given."""
    telemetry.webhook_rejection_observe(kind=kind, reason="invalid_signature")
    return WebhookRequest.objects.create(
        kind=kind,
        url=url[:2000],
        headers=headers,
        body=body,
        outcome=WebhookRequest.Outcome.REJECTED,
        note=note[:500],
    )


def webhook_durability_set(*, kind: str) -> None:
    """In the webhook's transaction: a delivery receipt commits without waiting for the disk,
    an inbound SMS waits.

    The wait (the WAL flush, 3-80 ms on the bench machine's disk) was most of a receipt's time
    and all of its tail. A receipt lost in a database crash is not lost for good: its message
    keeps the status it had (`sent`, say), and reconciliation asks the provider for it after
    CAMPAIGNS_RECONCILE_AFTER_SECONDS, through the same `_status_apply`. An inbound STOP has no
    such second source, so it stays durable before Twilio hears 200.
    """
    if kind == WebhookRequest.Kind.STATUS:
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit = off")


def webhook_process(
    *, webhook: WebhookRequest, params: dict[str, str], dedup_key: str, message_ref: str = ""
) -> WebhookResult:
    """Process a verified webhook once per dedup key; a repeat is recognised and skipped."""
    try:
        with transaction.atomic():
            # The partial unique index lets only one copy per key be `processed`.
            WebhookRequest.objects.filter(pk=webhook.pk).update(
                outcome=WebhookRequest.Outcome.PROCESSED, dedup_key=dedup_key[:200]
            )
            if webhook.kind == WebhookRequest.Kind.STATUS:
                result = _status_webhook(params=params, message_ref=message_ref)
            else:
                result = _inbound_webhook(params=params)
            if result.outcome != WebhookRequest.Outcome.PROCESSED:
                WebhookRequest.objects.filter(pk=webhook.pk).update(
                    outcome=result.outcome, note=result.reply[:500], dedup_key=""
                )
            return result
    except IntegrityError:
        WebhookRequest.objects.filter(pk=webhook.pk).update(
            outcome=WebhookRequest.Outcome.DUPLICATE, dedup_key=dedup_key[:200]
        )
        return WebhookResult(outcome=WebhookRequest.Outcome.DUPLICATE)


def _status_webhook(*, params: dict[str, str], message_ref: str) -> WebhookResult:
    sid = params.get("MessageSid") or params.get("SmsSid") or ""
    provider_status = (params.get("MessageStatus") or params.get("SmsStatus") or "").lower()
    messages = Message.objects.select_for_update().select_related("contact")
    message = None
    if message_ref.isdigit():
        message = messages.filter(pk=int(message_ref)).first()
        if message is not None and message.provider_sid and sid and message.provider_sid != sid:
            message = None  # a callback URL reused with another message's SID: do not trust it
    if message is None and sid:
        message = messages.filter(provider_sid=sid).first()
    if message is None:
        return WebhookResult(outcome=WebhookRequest.Outcome.IGNORED, reply="unknown message")
    _status_apply(
        message,
        ProviderStatus(sid=sid, status=provider_status, error_code=params.get("ErrorCode") or ""),
        MessageTransition.Source.CALLBACK,
    )
    return WebhookResult(outcome=WebhookRequest.Outcome.PROCESSED)


def _inbound_webhook(*, params: dict[str, str]) -> WebhookResult:
    try:
        phone = phone_normalize(params.get("From", ""), field="From")
    except InvalidPhone:
        return WebhookResult(outcome=WebhookRequest.Outcome.IGNORED, reply="invalid sender")
    opt_out_type = (params.get("OptOutType") or "").upper()
    word = (params.get("Body") or "").strip().upper()
    if opt_out_type in {"STOP", "START", "HELP"}:
        kind = opt_out_type
    elif word in STOP_KEYWORDS:
        kind = "STOP"
    elif word in START_KEYWORDS:
        kind = "START"
    elif word in HELP_KEYWORDS:
        kind = "HELP"
    else:
        return WebhookResult(outcome=WebhookRequest.Outcome.PROCESSED)
    # With Advanced Opt-Out (OptOutType present) Twilio has already answered the sender.
    answered_by_twilio = bool(opt_out_type)
    if kind == "HELP":
        reply = "" if answered_by_twilio else settings.SMS_HELP_TEXT
        return WebhookResult(outcome=WebhookRequest.Outcome.PROCESSED, reply=reply)
    contact = Contact.objects.select_for_update().filter(phone=phone).first()
    if contact is None:
        contact = Contact.objects.create(phone=phone, **contact_fields(phone, ""))
    action = ConsentEvent.Action.OPT_OUT if kind == "STOP" else ConsentEvent.Action.OPT_IN
    changed = consent_apply(
        contact=contact,
        topic=ConsentEvent.ALL_TOPICS,
        action=action,
        source=ConsentEvent.Source.SMS_KEYWORD,
        evidence={
            "message_sid": params.get("MessageSid", ""),
            "body": word[:40],
            "opt_out_type": opt_out_type,
        },
    )
    audit_record(
        actor=None,
        action=f"consent.{action}",
        target_type="contact",
        target_id=contact.pk,
        after={"topic": ConsentEvent.ALL_TOPICS, "source": "sms_keyword", "changed": changed},
    )
    reply = ""
    if changed and not answered_by_twilio:
        reply = (
            settings.CAMPAIGNS_STOP_CONFIRMATION
            if kind == "STOP"
            else settings.CAMPAIGNS_START_CONFIRMATION
        )
    return WebhookResult(outcome=WebhookRequest.Outcome.PROCESSED, reply=reply)


def messages_reconcile(*, now: datetime | None = None, limit: int = 200) -> dict[str, int]:
    """Ask the provider about messages whose outcome we do not know.

    - `sending` past the timeout: its worker died mid-send, so the outcome is `unknown`;
    - `unknown` with a SID, or `sent` without a receipt for too long: fetch the status;
    - `unknown` without a SID: look for it at the provider (same number and body, sent after
      the claim); found -> adopt it; not found after the give-up age -> it never left, so it
      goes back to `pending` and will be sent (once).
    """
    now = now or timezone.now()
    counts = {"unknown": 0, "updated": 0, "requeued": 0, "errors": 0}
    with transaction.atomic():
        stuck = list(
            Message.objects.select_for_update(skip_locked=True).filter(
                status=S.SENDING,
                claimed_at__lt=now - timedelta(seconds=settings.CAMPAIGNS_SENDING_TIMEOUT_SECONDS),
            )[:limit]
        )
        for message in stuck:
            message_transition(
                message,
                S.UNKNOWN,
                MessageTransition.Source.RECONCILE,
                detail={"reason": "sending_timeout"},
            )
            counts["unknown"] += 1
    candidates = list(
        Message.objects.filter(
            Q(status=S.UNKNOWN)
            | Q(
                status=S.SENT,
                sent_at__lt=now - timedelta(seconds=settings.CAMPAIGNS_RECONCILE_AFTER_SECONDS),
            )
        )
        .order_by("updated_at")
        .values_list("id", flat=True)[:limit]
    )
    try:
        provider = provider_get()
    except ProviderError as error:
        logger.warning("reconcile_skipped", reason=error.message)
        return counts
    for message_id in candidates:
        try:
            counts[_message_reconcile(message_id=message_id, provider=provider, now=now)] += 1
        except ProviderError as error:
            logger.warning("reconcile_failed", message_id=message_id, code=error.code)
            counts["errors"] += 1
    return counts


@transaction.atomic
def _message_reconcile(*, message_id: int, provider: SmsProvider, now: datetime) -> str:
    message = (
        Message.objects.select_for_update(skip_locked=True)
        .select_related("contact")
        .filter(pk=message_id, status__in=[S.UNKNOWN, S.SENT])
        .first()
    )
    if message is None:
        return "updated"
    source = MessageTransition.Source.RECONCILE
    if message.provider_sid:
        status = provider.fetch(sid=message.provider_sid)
        if not _status_apply(message, status, source):
            # Nothing new: step to the back of the queue so other messages get their turn.
            message.save(update_fields=["updated_at"])
        return "updated"
    since = (message.claimed_at or message.created_at) - timedelta(minutes=1)
    found = provider.find_sent(to=message.contact.phone, since=since, body=message.body)
    if found:
        status = found[0]
        if RANK.get(TWILIO_STATUS.get(status.status, S.SENT), 0) < RANK[S.SENT]:
            status = ProviderStatus(sid=status.sid, status="sent", error_code=status.error_code)
        _status_apply(message, status, source)
        return "updated"
    claimed_at = message.claimed_at or message.created_at
    if now - claimed_at < timedelta(seconds=settings.CAMPAIGNS_UNKNOWN_GIVE_UP_SECONDS):
        message.save(update_fields=["updated_at"])
        return "updated"  # too early to conclude; the provider may still be processing it
    message_transition(
        message,
        S.PENDING,
        source,
        fields={"send_after": now},
        detail={"reason": "not_found_at_provider"},
    )
    return "requeued"
