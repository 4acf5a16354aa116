"""Reads shared by the API, the pages and the admin."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Prefetch, Q, QuerySet, Sum
from django.db.models.functions import TruncMinute
from django.utils import timezone

from campaigns.audience import EXCLUSION_REASONS, audience_build
from campaigns.config import config_parse
from campaigns.exceptions import CampaignNotFound, ContactNotFound, InvalidPhone
from campaigns.models import (
    FINAL_STATUSES,
    IN_FLIGHT_STATUSES,
    Campaign,
    CampaignJob,
    ConsentEvent,
    Contact,
    Message,
    MessageTransition,
    Subscription,
    WebhookRequest,
)
from campaigns.phones import phone_normalize
from campaigns.pii import phone_hash
from core.errors import NotFound
from core.timeseries import date_bin


def contact_get(*, phone: str) -> Contact:
    """A contact by any form of its number; no contact can have a number that is not one."""
    try:
        e164 = phone_normalize(phone)
    except InvalidPhone:
        raise ContactNotFound(f"No contact with phone {phone}.") from None
    contact = Contact.objects.filter(phone=e164).first()
    if contact is None:
        raise ContactNotFound(f"No contact with phone {phone}.")
    return contact


def contact_list() -> QuerySet[Contact]:
    return Contact.objects.order_by("phone")


def consent_state(*, contact: Contact) -> dict[str, Any]:
    """Current consent per topic plus the ledger, newest first."""
    return {
        "phone": contact.phone,
        "opted_out": contact.opted_out,
        "topics": {
            subscription.topic: subscription.status
            for subscription in contact.subscriptions.order_by("topic")
        },
        "ledger": list(
            ConsentEvent.objects.filter(contact=contact)
            .order_by("-occurred_at", "-id")
            .values("topic", "action", "source", "evidence", "occurred_at")[:200]
        ),
    }


def campaign_get(*, campaign_id: int) -> Campaign:
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        raise CampaignNotFound(f"No campaign {campaign_id}.")
    return campaign


def campaign_job_latest(*, campaign: Campaign, kind: str) -> CampaignJob | None:
    """The campaign's most recent job of this kind (a page shows its progress or failure)."""
    return CampaignJob.objects.filter(campaign=campaign, kind=kind).order_by("-id").first()


def campaign_job_get(
    *, job_id: int, kind: str | None = None, campaign: Campaign | None = None
) -> CampaignJob:
    """A background job, 404 unless it is of this kind (and this campaign's), when given."""
    jobs = CampaignJob.objects.filter(pk=job_id)
    if kind is not None:
        jobs = jobs.filter(kind=kind)
    if campaign is not None:
        jobs = jobs.filter(campaign=campaign)
    job = jobs.first()
    if job is None:
        raise NotFound(f"No {kind or 'background'} job {job_id} here.")
    return job


def campaign_list() -> QuerySet[Campaign]:
    return Campaign.objects.order_by("-created_at", "-id")


def campaign_preview(
    *,
    campaign: Campaign,
    sample_size: int = 5,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """What a launch would do now: matched, eligible, exclusions by reason, first messages.
    (A background preview job passes `progress`, the contacts evaluated so far.)"""
    config = config_parse(campaign.config)
    audience = audience_build(
        config=config, now=timezone.now(), sample_size=sample_size, progress=progress
    )
    return {
        "contacts": audience.contacts,
        "matched": audience.matched,
        "eligible": audience.eligible_count,
        "excluded": {reason: audience.exclusions.get(reason, 0) for reason in EXCLUSION_REASONS},
        "segment_errors": audience.segment_errors,
        "samples": audience.samples,
        "template_errors": audience.template_errors,
    }


@dataclass(frozen=True)
class CampaignSummary:
    """What the campaign's page, its charts and the stats API read of its messages."""

    stats: dict[str, Any]
    # Messages by how far they got: a message counts in every stage it passed.
    funnel: dict[str, int]
    # (minute, SMS segments handed to the provider), oldest first, empty minutes left out.
    segments_per_minute: list[tuple[datetime, int]]


def campaign_summary(*, campaign: Campaign) -> CampaignSummary:
    """Counts by status, delivery rate, failures by error code, cancellations by reason, the
    funnel and sends per minute, from two scans of the campaign's messages (grouped by status
    and outcome, then by minute) rather than one scan per figure."""
    groups = list(
        Message.objects.filter(campaign=campaign)
        .values_list("status", "error_code", "cancel_reason")
        .annotate(
            n=Count("id"),
            queued=Count("id", filter=Q(queued_at__isnull=False)),
            sent=Count("id", filter=Q(sent_at__isnull=False)),
        )
        .order_by()
    )
    counts = dict.fromkeys(Message.Status.values, 0)
    failures: dict[str, int] = {}
    canceled: dict[str, int] = {}
    for status, error_code, cancel_reason, n, _queued, _sent in groups:
        counts[status] += n
        if status in ("failed", "undelivered"):
            failures[error_code or "none"] = failures.get(error_code or "none", 0) + n
        elif status == "canceled":
            canceled[cancel_reason or "none"] = canceled.get(cancel_reason or "none", 0) + n
    per_minute = list(
        Message.objects.filter(campaign=campaign, sent_at__isnull=False)
        .annotate(minute=TruncMinute("sent_at"))
        .values_list("minute")
        .annotate(n=Count("id"), segments=Sum("segments"))
        .order_by("minute")
        .values_list("minute", "n", "segments")
    )
    reported = counts["delivered"] + counts["undelivered"] + counts["failed"]
    stats = {
        "campaign": campaign.pk,
        "status": campaign.status,
        "total": sum(counts.values()),
        "counts": counts,
        "in_flight": sum(counts[s] for s in IN_FLIGHT_STATUSES),
        "final": sum(counts[s] for s in FINAL_STATUSES),
        "delivery_rate": round(counts["delivered"] / reported, 4) if reported else None,
        "failures_by_error_code": dict(sorted(failures.items(), key=lambda item: -item[1])),
        "canceled_by_reason": canceled,
        "sent_per_minute": [{"minute": minute, "sent": n} for minute, n, _ in per_minute][-120:],
    }
    funnel = {
        "queued": sum(group[4] for group in groups),
        "sent": sum(group[5] for group in groups),
        "delivered": counts["delivered"],
        "failed": counts["failed"],
        "undelivered": counts["undelivered"],
    }
    segments = [(minute, segments or 0) for minute, _n, segments in per_minute]
    return CampaignSummary(stats=stats, funnel=funnel, segments_per_minute=segments)


def campaign_stats(*, campaign: Campaign) -> dict[str, Any]:
    """Counts by status, delivery rate, failures by error code, sends per minute."""
    return campaign_summary(campaign=campaign).stats


def message_list() -> QuerySet[Message]:
    return Message.objects.select_related("contact").order_by("-id")


def messages_with_references(*, references: list[str]) -> list[Message]:
    """Messages created under these references (e.g. a decision's actions), with transitions."""
    return list(
        Message.objects.filter(reference__in=references)
        .select_related("contact")
        .prefetch_related(
            Prefetch(
                "transitions", queryset=MessageTransition.objects.order_by("occurred_at", "id")
            )
        )
        .order_by("reference")
    )


def message_get(*, message_id: int) -> Message:
    message = (
        Message.objects.select_related("contact", "campaign")
        .prefetch_related(
            Prefetch(
                "transitions", queryset=MessageTransition.objects.order_by("occurred_at", "id")
            )
        )
        .filter(pk=message_id)
        .first()
    )
    if message is None:
        raise NotFound(f"No message {message_id}.")
    return message


def campaign_status_counts() -> dict[str, int]:
    """How many campaigns are in each status (one grouped query)."""
    rows = Campaign.objects.values_list("status").annotate(n=Count("id")).order_by("status")
    return dict(rows.values_list("status", "n"))


def message_funnel(*, since: datetime) -> dict[str, int]:
    """Messages created since `since` by how far they got: created, queued, sent, then how
    they ended (one aggregate query)."""
    return Message.objects.filter(created_at__gte=since).aggregate(
        created=Count("id"),
        queued=Count("id", filter=Q(queued_at__isnull=False)),
        sent=Count("id", filter=Q(sent_at__isnull=False)),
        delivered=Count("id", filter=Q(status=Message.Status.DELIVERED)),
        undelivered=Count("id", filter=Q(status=Message.Status.UNDELIVERED)),
        failed=Count("id", filter=Q(status=Message.Status.FAILED)),
    )


def messages_sent_over_time(
    *, since: datetime, bucket: timedelta
) -> list[tuple[datetime, str, int]]:
    """(bucket start, "sent", count) of messages handed to the provider since `since`."""
    return [
        (start, "sent", count)
        for start, count in Message.objects.filter(sent_at__gte=since)
        .annotate(bucket=date_bin("sent_at", bucket))
        .values_list("bucket")
        .annotate(count=Count("*"))
        .values_list("bucket", "count")
    ]


def webhook_rejections_over_time(
    *, since: datetime, bucket: timedelta
) -> list[tuple[datetime, str, int]]:
    """(bucket start, webhook kind, count) of webhooks refused (bad signature, too large...)."""
    return list(
        WebhookRequest.objects.filter(
            received_at__gte=since, outcome=WebhookRequest.Outcome.REJECTED
        )
        .annotate(bucket=date_bin("received_at", bucket))
        .values_list("bucket", "kind")
        .annotate(count=Count("*"))
        .values_list("bucket", "kind", "count")
    )


def contact_search(*, query: str, exact_number_only: bool) -> QuerySet[Contact]:
    """Contacts by number or by attribute (`plan=gold`), by number order.

    `exact_number_only`: a reader who may not see numbers finds a contact only by its whole
    number, so a search cannot be used to guess numbers digit by digit.
    """
    contacts = contact_list()
    query = query.strip()
    if not query:
        return contacts
    if "=" in query:
        key, _, value = query.partition("=")
        return contacts.filter(attributes__contains={key.strip(): value.strip()})
    try:
        return contacts.filter(phone=phone_normalize(query))
    except InvalidPhone:
        pass
    digits = "".join(character for character in query if character.isdigit())
    if exact_number_only or not digits:
        return contacts.none()
    return contacts.filter(phone__contains=digits)


CONTACT_MESSAGES_SHOWN = 50


@dataclass(frozen=True)
class ContactPage:
    contact: Contact
    messages: list[Message] | None  # None: the reader may not see messages


def contact_page(*, contact_id: int, with_messages: bool) -> ContactPage:
    """A contact with its subscriptions, consent ledger (newest first) and latest messages,
    each message with its campaign and transitions: four queries whatever their number."""
    messages = (
        Message.objects.select_related("campaign")
        .prefetch_related(
            Prefetch(
                "transitions", queryset=MessageTransition.objects.order_by("occurred_at", "id")
            )
        )
        .order_by("-id")
    )
    contact = (
        Contact.objects.prefetch_related(
            Prefetch("subscriptions", queryset=Subscription.objects.order_by("topic")),
            Prefetch(
                "consent_events", queryset=ConsentEvent.objects.order_by("-occurred_at", "-id")
            ),
        )
        .filter(pk=contact_id)
        .first()
    )
    if contact is None:
        raise ContactNotFound(f"No contact {contact_id}.")
    if not with_messages:
        return ContactPage(contact=contact, messages=None)
    return ContactPage(
        contact=contact, messages=list(messages.filter(contact=contact)[:CONTACT_MESSAGES_SHOWN])
    )


def consent_ledger_for_number(*, phone: str) -> list[dict[str, Any]]:
    """The ledger of a number, found by its salted hash: evidence that outlives an erasure."""
    rows = (
        ConsentEvent.objects.filter(phone_hash=phone_hash(phone_normalize(phone)))
        .order_by("-occurred_at", "-id")
        .values("contact_id", "topic", "action", "source", "evidence", "occurred_at")[:200]
    )
    return [dict(row) for row in rows]
