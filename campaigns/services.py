"""Every write of the campaigns app: contacts, consent, campaigns, the send pipeline, webhooks.

Never twice: a message row is claimed (queued -> sending, committed) before the provider is
called, and nothing but that conditional update can start a send. A re-run task, a duplicate
enqueue or a resumed campaign finds the row no longer `queued` and stops. A send whose outcome
is unknown is parked as `unknown` and reconciled by asking the provider, never retried blindly.
"""

import csv
import io
import random
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

import structlog
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from campaigns.audience import COUNTED_FOR_CAP, OutcomeSink, audience_build, audience_inputs
from campaigns.config import compile_template, config_cached, config_parse, render_template
from campaigns.exceptions import (
    CampaignStateConflict,
    InvalidPhone,
    ReferenceConflict,
)
from campaigns.models import (
    FINAL_STATUSES,
    IN_FLIGHT_STATUSES,
    Campaign,
    ConsentEvent,
    Contact,
    Message,
    MessageTransition,
    Subscription,
    WebhookRequest,
)
from campaigns.phones import candidate_zones, phone_normalize, phone_region, zone_is_known
from campaigns.providers import (
    BAD_NUMBER_CODES,
    UNSUBSCRIBED_CODE,
    ProviderError,
    ProviderOutcomeUnknown,
    ProviderStatus,
    provider_get,
)
from campaigns.ratelimit import rate_limit_acquire
from campaigns.sms import sms_length
from campaigns.windows import SendWindow, inside_window, next_allowed
from core.audit import audit_record
from core.errors import InvalidInput

logger = structlog.get_logger(__name__)

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
STOP_KEYWORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
)
START_KEYWORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_KEYWORDS = frozenset({"HELP", "INFO"})
DEFAULT_WINDOW = SendWindow(start=time(8, 0), end=time(21, 0))


# --- contacts and consent ---------------------------------------------------------------------


def _contact_fields(phone: str, time_zone: str) -> dict[str, Any]:
    if time_zone and not zone_is_known(time_zone):
        raise InvalidInput(
            f"Unknown time zone {time_zone!r}.", errors={"time_zone": ["An IANA zone name."]}
        )
    return {
        "region": phone_region(phone),
        "number_time_zones": ",".join(candidate_zones(phone)),
        "time_zone": time_zone,
    }


def _validate_attributes(attributes: Any) -> dict[str, Any]:
    if not isinstance(attributes, dict):
        raise InvalidInput("Attributes must be an object.", errors={"attributes": ["An object."]})
    if len(str(attributes)) > 10_000:
        raise InvalidInput(
            "Attributes are limited to 10,000 characters.", errors={"attributes": ["Too large."]}
        )
    return attributes


@transaction.atomic
def contact_create(
    *,
    phone: str,
    attributes: dict[str, Any] | None = None,
    time_zone: str = "",
    consent: dict[str, bool] | None = None,
    source: str = ConsentEvent.Source.API,
    actor: Any = None,
) -> Contact:
    """Create a contact from any form of a valid number; its opt-ins go into the ledger."""
    e164 = phone_normalize(phone)
    if Contact.objects.filter(phone=e164).exists():
        raise InvalidInput(
            f"A contact with phone {e164} exists.", errors={"phone": ["Already exists."]}
        )
    contact = Contact(
        phone=e164,
        attributes=_validate_attributes(attributes or {}),
        **_contact_fields(e164, time_zone),
    )
    contact.full_clean()
    contact.save()
    for topic, opted_in in (consent or {}).items():
        _consent_apply(
            contact=contact,
            topic=topic,
            action=ConsentEvent.Action.OPT_IN if opted_in else ConsentEvent.Action.OPT_OUT,
            source=source,
            evidence={"via": "contact_create"},
        )
    audit_record(
        actor=actor,
        action="contact.create",
        target_type="contact",
        target_id=contact.pk,
        after={"phone": e164},
    )
    return contact


@transaction.atomic
def contact_update(
    *,
    contact: Contact,
    attributes: dict[str, Any] | None = None,
    time_zone: str | None = None,
    actor: Any = None,
) -> Contact:
    """Replace a contact's attributes and/or time-zone override."""
    contact = Contact.objects.select_for_update().get(pk=contact.pk)
    before = {"attributes": contact.attributes, "time_zone": contact.time_zone}
    if attributes is not None:
        contact.attributes = _validate_attributes(attributes)
    if time_zone is not None:
        contact.time_zone = _contact_fields(contact.phone, time_zone)["time_zone"]
    contact.full_clean()
    contact.save(update_fields=["attributes", "time_zone", "updated_at"])
    audit_record(
        actor=actor,
        action="contact.update",
        target_type="contact",
        target_id=contact.pk,
        before=before,
        after={"attributes": contact.attributes, "time_zone": contact.time_zone},
    )
    return contact


def _consent_apply(
    *, contact: Contact, topic: str, action: str, source: str, evidence: dict[str, Any]
) -> bool:
    """Append to the ledger and update the current state; True when the state changed."""
    now = timezone.now()
    ConsentEvent.objects.create(
        contact=contact,
        topic=topic,
        action=action,
        source=source,
        evidence=evidence,
        occurred_at=now,
    )
    opted_out = action == ConsentEvent.Action.OPT_OUT
    if topic == ConsentEvent.ALL_TOPICS:
        if contact.opted_out == opted_out:
            return False
        contact.opted_out = opted_out
        contact.save(update_fields=["opted_out", "updated_at"])
        return True
    status = Subscription.Status.OPTED_OUT if opted_out else Subscription.Status.OPTED_IN
    current = Subscription.objects.filter(contact=contact, topic=topic).first()
    if current is not None and current.status == status:
        return False
    Subscription.objects.update_or_create(
        contact=contact,
        topic=topic,
        defaults={"status": status, "source": source, "updated_at": now},
    )
    return True


@transaction.atomic
def consent_change(
    *,
    contact: Contact,
    topic: str,
    action: str,
    source: str,
    evidence: dict[str, Any] | None = None,
    actor: Any = None,
) -> bool:
    """Record an opt-in or opt-out for a topic ('*' = all); True when the state changed."""
    if action not in ConsentEvent.Action.values:
        raise InvalidInput("Unknown action.", errors={"action": ["opt_in or opt_out."]})
    if source not in ConsentEvent.Source.values:
        raise InvalidInput("Unknown source.", errors={"source": ["Not a consent source."]})
    if not topic or len(topic) > 64:
        raise InvalidInput("A topic is required.", errors={"topic": ["1 to 64 characters."]})
    contact = Contact.objects.select_for_update().get(pk=contact.pk)
    changed = _consent_apply(
        contact=contact, topic=topic, action=action, source=source, evidence=evidence or {}
    )
    audit_record(
        actor=actor,
        action=f"consent.{action}",
        target_type="contact",
        target_id=contact.pk,
        after={"topic": topic, "source": source, "changed": changed},
    )
    return changed


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"created": self.created, "updated": self.updated, "rejected": self.rejected}


@transaction.atomic
def contacts_import(*, text: str, actor: Any = None) -> ImportReport:
    """Import a CSV (header `phone` + attribute columns + optional `time_zone`, `consent_*`).

    Valid rows are created or updated; invalid rows are reported with their line number and
    change nothing. `consent_<topic>` columns take yes/no and go into the ledger as imports.
    """
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "phone" not in [name.strip() for name in reader.fieldnames]:
        raise InvalidInput(
            "The CSV needs a header row with a `phone` column.", errors={"file": ["No phone."]}
        )
    report = ImportReport()
    seen: set[str] = set()
    for index, row in enumerate(reader):
        line = index + 2  # the header is line 1
        if index >= settings.CAMPAIGNS_IMPORT_MAX_ROWS:
            report.rejected.append(
                {"line": line, "errors": [f"Over {settings.CAMPAIGNS_IMPORT_MAX_ROWS} rows."]}
            )
            break
        row = {(key or "").strip(): (value or "").strip() for key, value in row.items()}
        try:
            phone = phone_normalize(row.pop("phone", ""))
        except InvalidPhone as error:
            report.rejected.append({"line": line, "errors": [error.detail]})
            continue
        if phone in seen:
            report.rejected.append({"line": line, "errors": [f"{phone} repeats an earlier row."]})
            continue
        seen.add(phone)
        time_zone = row.pop("time_zone", "")
        if time_zone and not zone_is_known(time_zone):
            report.rejected.append({"line": line, "errors": [f"Unknown time zone {time_zone!r}."]})
            continue
        consent = {
            key.removeprefix("consent_"): value.lower() in {"1", "yes", "true", "y"}
            for key, value in list(row.items())
            if key.startswith("consent_") and value
        }
        attributes = {key: value for key, value in row.items() if not key.startswith("consent_")}
        contact = Contact.objects.filter(phone=phone).first()
        if contact is None:
            contact = Contact.objects.create(
                phone=phone, attributes=attributes, **_contact_fields(phone, time_zone)
            )
            report.created += 1
        else:
            contact.attributes = {**contact.attributes, **attributes}
            if time_zone:
                contact.time_zone = time_zone
            contact.save(update_fields=["attributes", "time_zone", "updated_at"])
            report.updated += 1
        for topic, opted_in in consent.items():
            _consent_apply(
                contact=contact,
                topic=topic,
                action=ConsentEvent.Action.OPT_IN if opted_in else ConsentEvent.Action.OPT_OUT,
                source=ConsentEvent.Source.IMPORT,
                evidence={"line": line},
            )
    audit_record(
        actor=actor,
        action="contact.import",
        target_type="contact",
        target_id="import",
        after={
            "created": report.created,
            "updated": report.updated,
            "rejected": len(report.rejected),
        },
    )
    return report


# --- campaigns --------------------------------------------------------------------------------


@transaction.atomic
def campaign_create(*, name: str, config: dict[str, Any], actor: Any = None) -> Campaign:
    """Create a draft campaign with a validated config."""
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise InvalidInput("A name is required.", errors={"name": ["1 to 200 characters."]})
    config_parse(config)
    campaign = Campaign.objects.create(
        name=name, config=config, created_by=str(getattr(actor, "username", "") or "")
    )
    audit_record(
        actor=actor,
        action="campaign.create",
        target_type="campaign",
        target_id=campaign.pk,
        after={"name": name, "config": config},
    )
    return campaign


@transaction.atomic
def campaign_update(
    *,
    campaign: Campaign,
    name: str | None = None,
    config: dict[str, Any] | None = None,
    actor: Any = None,
) -> Campaign:
    """Change a draft's name or config; a launched campaign is immutable."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status != Campaign.Status.DRAFT:
        raise CampaignStateConflict(
            f"Only a draft can be edited; this campaign is {campaign.status}."
        )
    before = {"name": campaign.name, "config": campaign.config}
    if name is not None:
        name = name.strip()
        if not name or len(name) > 200:
            raise InvalidInput("A name is required.", errors={"name": ["1 to 200 characters."]})
        campaign.name = name
    if config is not None:
        config_parse(config)
        campaign.config = config
    campaign.save(update_fields=["name", "config", "updated_at"])
    audit_record(
        actor=actor,
        action="campaign.update",
        target_type="campaign",
        target_id=campaign.pk,
        before=before,
        after={"name": campaign.name, "config": campaign.config},
    )
    return campaign


@transaction.atomic
def campaign_launch(*, campaign: Campaign, actor: Any = None) -> Campaign:
    """Materialise one message per eligible contact, in bulk, and start (or schedule) sending.

    Matched but excluded contacts get a canceled message naming the reason, so every decision
    about every contact is on record.
    """
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status != Campaign.Status.DRAFT:
        raise CampaignStateConflict(f"Only a draft can be launched; this one is {campaign.status}.")
    config = config_parse(campaign.config)
    now = timezone.now()
    inputs = audience_inputs(config=config, now=now, stream_contacts=False)
    with _messages_copy(campaign=campaign, topic=config.topic, now=now) as write:
        audience = audience_build(config=config, now=now, inputs=inputs, on_outcome=write)
    scheduled = config.start_at is not None and config.start_at > now
    campaign.status = Campaign.Status.SCHEDULED if scheduled else Campaign.Status.RUNNING
    campaign.launched_at = now
    campaign.launch_summary = {
        "contacts": audience.contacts,
        "matched": audience.matched,
        "eligible": audience.eligible_count,
        "excluded": dict(audience.exclusions),
        "segment_errors": audience.segment_errors,
    }
    campaign.save(update_fields=["status", "launched_at", "launch_summary", "updated_at"])
    audit_record(
        actor=actor,
        action="campaign.launch",
        target_type="campaign",
        target_id=campaign.pk,
        after=campaign.launch_summary,
    )
    return campaign


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_COPY_CHUNK = 5000


@contextmanager
def _messages_copy(*, campaign: Campaign, topic: str, now: datetime) -> Iterator[OutcomeSink]:
    """COPY the launch's messages, handing out a writer that takes one outcome at a time.

    Text-format COPY with rows formatted here: the fastest way into PostgreSQL. Rows go out in
    chunks as they are decided, so the server inserts one chunk while the next is evaluated.
    The campaign row lock taken by the caller makes every (campaign, contact) pair new.
    """
    columns = (
        "campaign_id, contact_id, topic, status, body, segments, send_after, attempts, "
        "provider, error_code, error_message, cancel_reason, created_at, updated_at"
    )
    stamp = now.isoformat()
    head = f"{campaign.pk}\t"
    pending = f"\t{topic}\t{S.PENDING}\t"
    pending_tail = f"\t0\t\t\t\t\t{stamp}\t{stamp}\n"
    canceled = f"\t{topic}\t{S.CANCELED}\t\t1\t{stamp}\t0\t\t\t\t"
    canceled_tail = f"\t{stamp}\t{stamp}\n"
    iso: dict[datetime, str] = {}
    lines: list[str] = []
    raw = connection.connection
    with raw.cursor() as cursor:
        # Do not wait for the WAL flush of ~100 MB at commit: a crash in that instant loses
        # the whole launch (the campaign is still a draft), never half of it.
        cursor.execute("SET LOCAL synchronous_commit TO OFF")
    with (
        raw.cursor() as cursor,
        cursor.copy(f"COPY campaigns_message ({columns}) FROM STDIN") as copy,
    ):

        def write(
            contact_id: int, body: str, segments: int, send_after: datetime | None, reason: str
        ) -> None:
            if send_after is None:
                lines.append(f"{head}{contact_id}{canceled}{reason}{canceled_tail}")
            else:
                when = iso.get(send_after) or iso.setdefault(send_after, send_after.isoformat())
                lines.append(
                    f"{head}{contact_id}{pending}{body.translate(_COPY_ESCAPES)}"
                    f"\t{segments}\t{when}{pending_tail}"
                )
            if len(lines) >= _COPY_CHUNK:
                copy.write("".join(lines))
                lines.clear()

        yield write
        if lines:
            copy.write("".join(lines))


def _campaign_transition(
    *, campaign: Campaign, allowed_from: Iterable[str], to: str, actor: Any
) -> Campaign:
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status not in allowed_from:
        raise CampaignStateConflict(f"A {campaign.status} campaign cannot become {to}.")
    before = campaign.status
    campaign.status = to
    fields = ["status", "updated_at"]
    if to in (Campaign.Status.CANCELED, Campaign.Status.COMPLETED):
        campaign.finished_at = timezone.now()
        fields.append("finished_at")
    campaign.save(update_fields=fields)
    audit_record(
        actor=actor,
        action=f"campaign.{to}",
        target_type="campaign",
        target_id=campaign.pk,
        before={"status": before},
        after={"status": to},
    )
    return campaign


def _messages_move(
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
    """  # noqa: S608 -- `where` and `extra_set` are constants of this module, values are bound
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, to, *(extra_params or []), to, source, detail])
        return cursor.rowcount


@transaction.atomic
def campaign_pause(*, campaign: Campaign, actor: Any = None) -> Campaign:
    """Stop sending: queued messages go back to pending, so no new claim can succeed."""
    campaign = _campaign_transition(
        campaign=campaign,
        allowed_from=(Campaign.Status.RUNNING, Campaign.Status.SCHEDULED),
        to=Campaign.Status.PAUSED,
        actor=actor,
    )
    _messages_move(
        where="campaign_id = %s AND status = 'queued'",
        params=[campaign.pk],
        to=S.PENDING,
        source=MessageTransition.Source.OPERATOR,
        detail='{"reason": "campaign_paused"}',
    )
    return campaign


@transaction.atomic
def campaign_resume(*, campaign: Campaign, actor: Any = None) -> Campaign:
    """Continue a paused campaign; the dispatcher picks up its pending messages."""
    return _campaign_transition(
        campaign=campaign,
        allowed_from=(Campaign.Status.PAUSED,),
        to=Campaign.Status.RUNNING,
        actor=actor,
    )


@transaction.atomic
def campaign_cancel(*, campaign: Campaign, actor: Any = None) -> Campaign:
    """Cancel the rest: every message not yet claimed is canceled."""
    campaign = _campaign_transition(
        campaign=campaign,
        allowed_from=(
            Campaign.Status.DRAFT,
            Campaign.Status.SCHEDULED,
            Campaign.Status.RUNNING,
            Campaign.Status.PAUSED,
        ),
        to=Campaign.Status.CANCELED,
        actor=actor,
    )
    _messages_move(
        where="campaign_id = %s AND status IN ('pending', 'queued')",
        params=[campaign.pk],
        to=S.CANCELED,
        source=MessageTransition.Source.OPERATOR,
        extra_set=", cancel_reason = 'campaign_canceled', finished_at = now()",
        detail='{"reason": "campaign_canceled"}',
    )
    return campaign


# --- transactional messages (the contract the decisions app calls) ----------------------------


@transaction.atomic
def transactional_message_send(
    *,
    phone: str,
    template: str,
    context: dict[str, Any],
    topic: str = "transactional",
    reference: str,
) -> Message:
    """Render and enqueue one message outside any campaign; idempotent per `reference`.

    Safe inside the caller's transaction: the send is enqueued on commit, so a rollback leaves
    no message and no SMS. The same reference returns the existing message (never a second
    send); a different phone for a used reference is a ReferenceConflict. A contact who
    opted out (globally or from `topic`), or whose number is known bad, gets a `canceled`
    message with `cancel_reason` set (no exception), so the caller can record what happened.
    Invalid phone or template raise InvalidInput.
    """
    if not reference or len(reference) > 200:
        raise InvalidInput("A reference is required.", errors={"reference": ["1 to 200."]})
    e164 = phone_normalize(phone)
    existing = Message.objects.filter(reference=reference).select_related("contact").first()
    if existing is not None:
        if existing.contact.phone != e164:
            raise ReferenceConflict(f"Reference {reference!r} was used for another number.")
        return existing
    body = render_template(compile_template(template), {**context, "phone": e164})
    if not body:
        raise InvalidInput("The message is empty.", errors={"template": ["Renders empty."]})
    contact = Contact.objects.filter(phone=e164).first()
    if contact is None:
        contact = Contact.objects.create(phone=e164, **_contact_fields(e164, ""))
    reason = _consent_refusal(contact=contact, topic=topic)
    now = timezone.now()
    message = Message(
        contact=contact,
        reference=reference,
        topic=topic,
        status=S.CANCELED if reason else S.QUEUED,
        body=body,
        segments=sms_length(body).segments,
        send_after=now,
        queued_at=None if reason else now,
        cancel_reason=reason,
        finished_at=now if reason else None,
    )
    try:
        with transaction.atomic():
            message.save()
    except IntegrityError:
        # A concurrent call with the same reference won the race: return its message.
        return Message.objects.get(reference=reference)
    MessageTransition.objects.create(
        message=message,
        from_status=S.PENDING,
        to_status=message.status,
        source=MessageTransition.Source.DISPATCHER,
        occurred_at=now,
        detail={"reason": reason} if reason else {},
    )
    if not reason:
        from campaigns.tasks import send_message

        message_id = message.pk
        transaction.on_commit(lambda: send_message.delay(message_id))
    return message


def _consent_refusal(*, contact: Contact, topic: str) -> str:
    """Why this contact may not receive a message on `topic` now, or ""."""
    if contact.number_invalid:
        return "invalid_number"
    if contact.opted_out:
        return "opted_out"
    status = (
        Subscription.objects.filter(contact=contact, topic=topic)
        .values_list("status", flat=True)
        .first()
    )
    if status == Subscription.Status.OPTED_OUT:
        return "opted_out"
    if topic not in settings.CAMPAIGNS_IMPLICIT_CONSENT_TOPICS and status is None:
        return "no_consent"
    return ""


# --- the dispatcher ---------------------------------------------------------------------------


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
        _messages_move(
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
        from campaigns.tasks import send_message

        def enqueue() -> None:
            for message_id in to_send:
                send_message.delay(message_id)

        transaction.on_commit(enqueue)
    _campaigns_complete()
    return len(to_send)


def _campaigns_complete() -> None:
    """Running campaigns with nothing left to send are completed."""
    unfinished = Message.objects.filter(campaign_id=OuterRef("pk"), status__in=IN_FLIGHT_STATUSES)
    now = timezone.now()
    Campaign.objects.filter(status=Campaign.Status.RUNNING).exclude(Exists(unfinished)).update(
        status=Campaign.Status.COMPLETED, finished_at=now, updated_at=now
    )


# --- sending ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hold:
    """Why a queued message does not go now: back to pending (later) or canceled."""

    to: str
    reason: str
    send_after: datetime | None = None


def _window_for(message: Message) -> SendWindow:
    if message.campaign is None:
        return DEFAULT_WINDOW
    return config_cached(message.campaign.config).send_window


def _eligibility(
    message: Message, contact: Contact, now: datetime, *, look_up: bool = True
) -> Hold | None:
    """Campaign state, consent, quiet hours and frequency cap, checked at send time.

    `look_up=False` skips the checks that need queries (consent, cap): a quick first look.
    """
    campaign = message.campaign
    hold = _campaign_status_hold(campaign.status if campaign is not None else None)
    if hold is not None:
        return hold
    refusal = _consent_refusal(contact=contact, topic=message.topic) if look_up else ""
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


def _transition(
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
    _transition(
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
    return _campaign_status_hold(row[2])


def _campaign_status_hold(status: str | None) -> Hold | None:
    """Where a message goes while its campaign is not running (None: no campaign, or running)."""
    if status is None or status == Campaign.Status.RUNNING:
        return None
    if status == Campaign.Status.CANCELED:
        return Hold(to=S.CANCELED, reason="campaign_canceled")
    return Hold(to=S.PENDING, reason=f"campaign_{status}")


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
    _messages_move(
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
    if sid and _messages_move(
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
            _transition(
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
            _transition(message, S.UNKNOWN, source, detail={"error": unknown[:300]})
        return
    assert error is not None
    detail = {"code": error.code, "error": error.message[:300]}
    if error.transient and message.attempts < settings.CAMPAIGNS_MAX_ATTEMPTS:
        later = timezone.now() + timedelta(seconds=retry_delay(message.attempts))
        _transition(
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
    _transition(
        message,
        S.FAILED,
        source,
        fields={"error_code": error.code, "error_message": error.message[:500]},
        detail=detail,
    )
    _permanent_error_effects(contact=message.contact, code=error.code, message_id=message.pk)


def _permanent_error_effects(*, contact: Contact, code: str, message_id: int) -> None:
    if code == UNSUBSCRIBED_CODE:
        # The carrier says this person unsubscribed: our ledger must agree.
        locked = Contact.objects.select_for_update().get(pk=contact.pk)
        _consent_apply(
            contact=locked,
            topic=ConsentEvent.ALL_TOPICS,
            action=ConsentEvent.Action.OPT_OUT,
            source=ConsentEvent.Source.PROVIDER,
            evidence={"error_code": code, "message_id": message_id},
        )
    elif code in BAD_NUMBER_CODES:
        Contact.objects.filter(pk=contact.pk).update(number_invalid=True, updated_at=timezone.now())


# --- status callbacks, reconciliation ---------------------------------------------------------


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
    _transition(
        message,
        target,
        source,
        fields=fields,
        detail={"provider_status": status.status, "error_code": status.error_code},
        ranked=True,
    )
    if target in (S.UNDELIVERED, S.FAILED) and status.error_code:
        _permanent_error_effects(
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


def webhook_reject(*, webhook: WebhookRequest, note: str) -> None:
    """Mark a stored webhook as rejected (bad signature)."""
    WebhookRequest.objects.filter(pk=webhook.pk).update(
        outcome=WebhookRequest.Outcome.REJECTED, note=note[:500]
    )


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
        contact = Contact.objects.create(phone=phone, **_contact_fields(phone, ""))
    action = ConsentEvent.Action.OPT_OUT if kind == "STOP" else ConsentEvent.Action.OPT_IN
    changed = _consent_apply(
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
            _transition(
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
def _message_reconcile(*, message_id: int, provider: Any, now: datetime) -> str:
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
    _transition(
        message,
        S.PENDING,
        source,
        fields={"send_after": now},
        detail={"reason": "not_found_at_provider"},
    )
    return "requeued"
