"""Who a campaign reaches: segment match, then exclusions, then the rendered message.

Shared by the preview (counts and samples) and the launch (materialisation), so the preview
says exactly what the launch will do. Built for 100,000 contacts in a few seconds: one pass
over narrow tuples, CEL programs and templates compiled once, zones precomputed per contact,
and every outcome handed to the caller as it is decided, so the launch streams it into COPY
while the next contacts are still being evaluated (the database works on the other core).
"""

import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Q

from campaigns.config import CampaignConfig, compile_template, render_template
from campaigns.exceptions import TemplateRenderError
from campaigns.guards import COUNTRY_NOT_ALLOWED, allowed_regions, country_refusal
from campaigns.models import Message, Subscription
from campaigns.segments import Memo, segment_compile, segment_reads, template_reads
from campaigns.sms import sms_length
from campaigns.windows import next_allowed
from core.expressions import EvaluationError

# Why a matched contact gets no message, in the order the checks run.
EXCLUSION_REASONS = (
    "country_not_allowed",
    "invalid_number",
    "opted_out",
    "no_consent",
    "frequency_cap",
    "template_error",
    "no_send_window",
)
PROGRESS_EVERY = 2000
COUNTED_FOR_CAP = Q(status__in=["sending", "unknown"]) | Q(provider_sid__isnull=False)


# Called once per matched contact, in contact order: (contact_id, body, segments, send_after,
# reason). An eligible contact has a body and a send time and an empty reason; an excluded one
# has the reason and neither. Positional, because it runs 100,000 times per launch.
OutcomeSink = Callable[[int, str, int, datetime | None, str], None]


@dataclass
class Audience:
    contacts: int = 0
    matched: int = 0
    eligible_count: int = 0
    segment_errors: int = 0
    exclusions: Counter[str] = field(default_factory=Counter)
    samples: list[dict[str, Any]] = field(default_factory=list)
    template_errors: list[str] = field(default_factory=list)


def recent_message_counts(
    *,
    since: datetime,
    contact_ids: list[int] | None = None,
    through_contact: int | None = None,
    exclude: list[int] | None = None,
) -> dict:
    """Messages that went (or may have gone) out per contact since `since`, across campaigns
    (leaving out the messages `exclude`), for `contact_ids` or the contacts up to id
    `through_contact` when given."""
    rows = Message.objects.filter(COUNTED_FOR_CAP, claimed_at__gte=since)
    if contact_ids is not None:
        rows = rows.filter(contact_id__in=contact_ids)
    if through_contact is not None:
        rows = rows.filter(contact_id__lte=through_contact)
    if exclude:
        rows = rows.exclude(pk__in=exclude)
    return dict(
        rows.values_list("contact_id").annotate(n=Count("id")).values_list("contact_id", "n")
    )


CONTACT_COLUMNS = (
    "SELECT id, phone, attributes::text, region, time_zone, number_time_zones, opted_out, "
    "number_invalid FROM campaigns_contact ORDER BY id"
)


def audience_contacts() -> Iterator[tuple]:
    """Every contact as the narrow tuple `audience_build` reads, streamed from the database."""
    # A plain server-side cursor: Django's per-row converters cost more than the query.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DECLARE audience_contacts NO SCROLL CURSOR FOR {CONTACT_COLUMNS}")
        while True:
            cursor.execute("FETCH 20000 FROM audience_contacts")
            rows = cursor.fetchall()
            if not rows:
                break
            yield from _attributes_parsed(rows)
        cursor.execute("CLOSE audience_contacts")


def audience_window(*, limit: int) -> list[tuple]:
    """The first `limit` contacts by id, as `audience_contacts` gives them, in one query."""
    with connection.cursor() as cursor:
        cursor.execute(f"{CONTACT_COLUMNS} LIMIT %s", [limit])
        return _attributes_parsed(cursor.fetchall())


def _attributes_parsed(rows: list[tuple]) -> list[tuple]:
    """The rows with their attributes (the third column, jsonb as text) parsed."""
    # One json.loads over the batch as an array: measured here ~2.5 ms for 5,000 rows against
    # ~8.5 ms for one call per row (the call's own overhead). jsonb text is always valid JSON.
    if not rows:
        return []
    parsed = json.loads("[" + ",".join([row[2] for row in rows]) + "]")
    return [
        (row[0], row[1], attributes, *row[3:]) for row, attributes in zip(rows, parsed, strict=True)
    ]


def topic_consent(*, topic: str, through_contact: int | None = None) -> dict[int, str]:
    """Each contact's subscription status for `topic` (contacts up to id `through_contact`
    when given); a contact without a row for the topic is absent."""
    rows = Subscription.objects.filter(topic=topic)
    if through_contact is not None:
        rows = rows.filter(contact_id__lte=through_contact)
    return dict(rows.values_list("contact_id", "status"))


@dataclass
class AudienceInputs:
    """Everything the evaluation reads from the database, read before it starts."""

    contacts: Iterable[tuple]
    subscriptions: dict[int, str]
    cap_counts: dict[int, int]


def audience_inputs(
    *,
    config: CampaignConfig,
    now: datetime,
    stream_contacts: bool = True,
    limit: int | None = None,
) -> AudienceInputs:
    """Read consent and recent sends; contacts are streamed, or read whole with
    `stream_contacts=False` (the launch: one connection cannot fetch and COPY at once).
    With `limit`, only the first `limit` contacts by id, and only their consent and sends
    (a window of a big audience, browsed in a request)."""
    through_contact: int | None = None
    window: list[tuple] | None = None
    if limit is not None:
        window = audience_window(limit=limit)
        # The first `limit` contacts by id are exactly those up to the last one's id.
        through_contact = window[-1][0] if window else 0
    subscriptions = topic_consent(topic=config.topic, through_contact=through_contact)
    cap_counts: dict[int, int] = {}
    if config.frequency_cap:
        cap_counts = recent_message_counts(
            since=now - timedelta(hours=config.frequency_cap.per_hours),
            through_contact=through_contact,
        )
    contacts: Iterable[tuple]
    if window is not None:
        contacts = window
    else:
        contacts = audience_contacts() if stream_contacts else list(audience_contacts())
    return AudienceInputs(contacts=contacts, subscriptions=subscriptions, cap_counts=cap_counts)


def audience_build(
    *,
    config: CampaignConfig,
    now: datetime,
    sample_size: int = 5,
    inputs: AudienceInputs | None = None,
    on_outcome: OutcomeSink | None = None,
    progress: Callable[[int], None] | None = None,
) -> Audience:
    """Evaluate the audience: counts, samples, and each matched contact's outcome handed to
    `on_outcome` when given (the launch writes them). With `inputs`, no query runs here.
    `progress(contacts_seen)` is called every PROGRESS_EVERY contacts (background jobs)."""
    segment = segment_compile(config.segment)
    segment_memo = Memo(segment_reads(config.segment))
    template_memo = Memo(template_reads(config.template))
    try:
        template = compile_template(config.template)
    except TemplateRenderError:
        template = None
    implicit = config.topic in settings.CAMPAIGNS_IMPLICIT_CONSENT_TOPICS
    regions = allowed_regions()
    if inputs is None:
        inputs = audience_inputs(config=config, now=now)
    subscriptions = inputs.subscriptions
    cap_counts = inputs.cap_counts
    start = max(now, config.start_at) if config.start_at else now
    window = config.send_window
    fallback_zone = settings.CAMPAIGNS_FALLBACK_TIME_ZONE
    # Plain strings: comparing with the enum members costs an attribute lookup per contact.
    opted_in, opted_out_status = (
        str(Subscription.Status.OPTED_IN),
        str(Subscription.Status.OPTED_OUT),
    )
    send_after_by_zones: dict[str, datetime | None] = {}
    audience = Audience()

    for (
        contact_id,
        phone,
        attributes,
        region,
        override,
        number_zones,
        opted_out,
        invalid,
    ) in inputs.contacts:
        audience.contacts += 1
        if progress is not None and not audience.contacts % PROGRESS_EVERY:
            progress(audience.contacts)
        if not isinstance(attributes, dict):
            attributes = {}
        contact = {
            "phone": phone,
            "country": region,
            "time_zone": override,
            "attributes": attributes,
        }
        matched = segment_memo.get(contact, partial(_matches, segment, contact))
        if matched is None:
            # A contact without the attribute the segment asks about is simply not in it.
            audience.segment_errors += 1
            continue
        if not matched:
            continue
        audience.matched += 1
        reason = ""
        body = ""
        zones_key = override or number_zones or fallback_zone
        consent = subscriptions.get(contact_id)
        if region not in regions and country_refusal(phone=phone, region=region):
            reason = COUNTRY_NOT_ALLOWED
        elif invalid:
            reason = "invalid_number"
        elif opted_out or consent == opted_out_status:
            reason = "opted_out"
        elif not implicit and consent != opted_in:
            reason = "no_consent"
        elif config.frequency_cap and (
            cap_counts.get(contact_id, 0) >= config.frequency_cap.max_messages
        ):
            reason = "frequency_cap"
        elif template is None:
            reason = "template_error"
        else:
            body, length, problem = template_memo.get(contact, partial(_render, template, contact))
            if problem:
                reason = "template_error"
                if len(audience.template_errors) < sample_size:
                    audience.template_errors.append(f"{phone}: {problem}")
        send_after = None
        if not reason:
            if zones_key not in send_after_by_zones:
                send_after_by_zones[zones_key] = next_allowed(
                    start, tuple(zones_key.split(",")), window
                )
            send_after = send_after_by_zones[zones_key]
            if send_after is None:
                reason = "no_send_window"
        if reason:
            audience.exclusions[reason] += 1
            if on_outcome is not None:
                on_outcome(contact_id, "", 1, None, reason)
            continue
        assert send_after is not None
        audience.eligible_count += 1
        if len(audience.samples) < sample_size:
            audience.samples.append(
                {
                    "phone": phone,
                    "body": body,
                    "characters": len(body),
                    "encoding": length.encoding,
                    "segments": length.segments,
                    "send_after": send_after.isoformat(),
                }
            )
        if on_outcome is not None:
            on_outcome(contact_id, body, length.segments, send_after, "")
    return audience


def _matches(segment: Any, contact: dict[str, Any]) -> bool | None:
    try:
        return bool(segment.matches(**contact))
    except EvaluationError:
        return None


def _render(template: Any, contact: dict[str, Any]) -> tuple[str, Any, str]:
    try:
        body = render_template(template, {"contact": contact})
    except TemplateRenderError as error:
        return "", None, error.detail
    if not body:
        return "", None, "The template renders an empty message."
    return body, sms_length(body), ""
