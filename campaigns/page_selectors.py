"""Reads of the campaign pages: the draft form's live segment count and message preview, the
exclusion browser, and the campaign page's charts and message table."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from campaigns.audience import EXCLUSION_REASONS, audience_build, audience_inputs
from campaigns.config import SAMPLE_CONTACT, compile_template, config_parse, render_template
from campaigns.models import Campaign, Contact, Message
from campaigns.segments import segment_compile, template_reads
from campaigns.selectors import CampaignSummary
from campaigns.sms import sms_length
from core.errors import InvalidInput
from core.expressions import EvaluationError

# The live count reads at most this many contacts (by id), then extrapolates: it runs as the
# manager types, so it stays near 100 ms with 100,000 contacts.
LIVE_COUNT_CONTACTS = 5_000


@dataclass(frozen=True)
class SegmentCount:
    total: int  # contacts in the database
    seen: int  # contacts evaluated (the first `seen` by id)
    matched: int
    undefined: int  # contacts lacking what the segment reads: not in it

    @property
    def estimated(self) -> int:
        """The match count over every contact, extrapolated when only some were read."""
        if self.seen >= self.total or not self.seen:
            return self.matched
        return round(self.matched * self.total / self.seen)


def segment_count(*, segment: str, limit: int = LIVE_COUNT_CONTACTS) -> SegmentCount:
    """How many contacts a segment matches (as the launch evaluates it): two queries, at most
    `limit` contacts read. Raises InvalidInput naming `config.segment` for a bad expression."""
    matcher = segment_compile(segment)
    total = Contact.objects.count()
    rows = Contact.objects.order_by("id").values_list("phone", "region", "time_zone", "attributes")
    matched = undefined = seen = 0
    for phone, region, time_zone, attributes in rows[:limit]:
        seen += 1
        contact = {
            "phone": phone,
            "country": region,
            "time_zone": time_zone,
            "attributes": attributes if isinstance(attributes, dict) else {},
        }
        try:
            matched += bool(matcher.matches(**contact))
        except EvaluationError:
            undefined += 1
    return SegmentCount(total=total, seen=seen, matched=matched, undefined=undefined)


@dataclass(frozen=True)
class MessagePreview:
    body: str
    characters: int
    encoding: str  # GSM-7 or UCS-2
    units: int  # septets or UTF-16 code units
    segments: int
    contact_id: int | None  # the real contact rendered for; None: the example contact


def _example_contact(template: str) -> dict[str, Any]:
    """A stand-in recipient whose every attribute the template reads shows its own name."""
    reads = template_reads(template)
    attributes = {name: f"[{name}]" for name in (reads.attributes if reads else ())}
    return {**SAMPLE_CONTACT, "attributes": attributes}


def message_preview(*, template: str, segment: str, real_contact: bool) -> MessagePreview:
    """The template rendered, as a send renders it, for the first contact the segment matches
    (`real_contact`, for a reader of personal data) or for an example contact; its length,
    encoding and SMS segments. Raises TemplateRenderError (syntax, a missing attribute, a
    size or work limit)."""
    compiled = compile_template(template)
    contact, contact_id = _example_contact(template), None
    if real_contact:
        matcher = segment_compile_or_none(segment)
        rows = Contact.objects.order_by("id").values_list(
            "id", "phone", "region", "time_zone", "attributes"
        )
        for pk, phone, region, time_zone, attributes in rows[:LIVE_COUNT_CONTACTS].iterator():
            candidate = {
                "phone": phone,
                "country": region,
                "time_zone": time_zone,
                "attributes": attributes if isinstance(attributes, dict) else {},
            }
            try:
                if matcher is None or matcher.matches(**candidate):
                    contact, contact_id = candidate, pk
                    break
            except EvaluationError:
                continue
    body = render_template(compiled, {"contact": contact})
    length = sms_length(body)
    return MessagePreview(
        body=body,
        characters=len(body),
        encoding=length.encoding,
        units=length.units,
        segments=length.segments,
        contact_id=contact_id,
    )


def segment_compile_or_none(segment: str) -> Any:
    """The compiled segment, or None when it does not compile (the preview then takes the
    first contact; the segment's own error is shown by the live count)."""
    try:
        return segment_compile(segment)
    except InvalidInput:
        return None


@dataclass(frozen=True)
class Exclusions:
    excluded: dict[str, int]  # every reason, in the order the checks run, with its count
    rows: list[tuple[int, str]]  # (contact id, reason) in contact order, filtered by reason
    seen: int  # contacts evaluated: all of them, or the first `limit` by id


def campaign_exclusions(
    *, campaign: Campaign, reason: str = "", limit: int | None = None
) -> Exclusions:
    """Who a launch now would skip and why: the same evaluation as the preview and the launch
    (`audience_build`), every excluded contact kept, narrowed to one reason when given.
    With `limit`, only the first `limit` contacts by id are evaluated (a big audience is
    browsed a window at a time; its preview job counts the whole)."""
    config = config_parse(campaign.config)
    rows: list[tuple[int, str]] = []

    def keep(contact_id: int, body: str, segments: int, send_after: Any, why: str) -> None:
        if why and (not reason or why == reason):
            rows.append((contact_id, why))

    now = timezone.now()
    # With a limit, only the window's contacts and their consent and sends are read.
    inputs = audience_inputs(config=config, now=now, limit=limit)
    audience = audience_build(config=config, now=now, sample_size=0, inputs=inputs, on_outcome=keep)
    excluded = {why: audience.exclusions.get(why, 0) for why in EXCLUSION_REASONS}
    return Exclusions(excluded=excluded, rows=rows, seen=audience.contacts)


def contact_count() -> int:
    return Contact.objects.count()


def contacts_by_id(*, ids: list[int]) -> dict[int, Contact]:
    return Contact.objects.in_bulk(ids)


SEND_RATE_MINUTES = 60


def campaign_send_rate(*, summary: CampaignSummary) -> list[tuple[datetime, int]]:
    """SMS segments handed to the provider per minute over the last SEND_RATE_MINUTES minutes
    of sending, empty minutes filled with 0."""
    counted = dict(summary.segments_per_minute)
    if not counted:
        return []
    last = max(counted)
    first = max(min(counted), last - timedelta(minutes=SEND_RATE_MINUTES - 1))
    minutes = int((last - first) / timedelta(minutes=1)) + 1
    return [
        (first + timedelta(minutes=i), counted.get(first + timedelta(minutes=i), 0))
        for i in range(minutes)
    ]


def campaign_messages(*, campaign: Campaign) -> QuerySet[Message]:
    """The campaign's messages, newest first, with their contact (for a paged table)."""
    return (
        Message.objects.filter(campaign=campaign)
        .select_related("contact")
        .only(
            "id",
            "status",
            "segments",
            "error_code",
            "cancel_reason",
            "sent_at",
            "created_at",
            "contact__phone",
        )
        .order_by("-id")
    )
