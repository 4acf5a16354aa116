"""Campaign lifecycle: draft edits, the launch (one COPY of every message), pause, cancel."""

import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from campaigns.audience import OutcomeSink, audience_build, audience_inputs
from campaigns.config import config_parse
from campaigns.exceptions import CampaignStateConflict
from campaigns.models import Campaign, MessageTransition
from campaigns.services.states import S, messages_move
from core.audit import Actor, audit_record
from core.errors import InvalidInput
from core.json import json_for_database


def _campaign_name_clean(name: str | None) -> str:
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise InvalidInput("A name is required.", errors={"name": ["1 to 200 characters."]})
    return name


@transaction.atomic
def campaign_create(*, name: str, config: dict[str, Any], actor: Actor = None) -> Campaign:
    """Create a draft campaign with a validated config."""
    name = _campaign_name_clean(name)
    config_parse(config)
    config = json_for_database(config, field="config")
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
    actor: Actor = None,
) -> Campaign:
    """Change a draft's name or config; a launched campaign is immutable."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status != Campaign.Status.DRAFT:
        raise CampaignStateConflict(
            f"Only a draft can be edited; this campaign is {campaign.status}."
        )
    before = {"name": campaign.name, "config": campaign.config}
    if name is not None:
        campaign.name = _campaign_name_clean(name)
    if config is not None:
        config_parse(config)
        campaign.config = json_for_database(config, field="config")
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
def campaign_launch(
    *, campaign: Campaign, actor: Actor = None, progress: Callable[[int], None] | None = None
) -> Campaign:
    """Materialise one message per eligible contact, in bulk, and start (or schedule) sending.

    Matched but excluded contacts get a canceled message naming the reason, so every decision
    about every contact is on record. The API and pages run it in a background job
    (`campaign_job_request`), which passes `progress` (contacts evaluated so far).
    """
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status != Campaign.Status.DRAFT:
        raise CampaignStateConflict(f"Only a draft can be launched; this one is {campaign.status}.")
    config = config_parse(campaign.config)
    now = timezone.now()
    inputs = audience_inputs(config=config, now=now, stream_contacts=False)
    with _messages_copy(campaign=campaign, topic=config.topic, now=now) as write:
        audience = audience_build(
            config=config, now=now, inputs=inputs, on_outcome=write, progress=progress
        )
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
    *, campaign: Campaign, allowed_from: Iterable[str], to: str, actor: Actor
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


def _messages_take_back(
    *, campaign: Campaign, statuses: list[str], to: str, reason: str, extra_set: str = ""
) -> None:
    """The operator's move of the campaign's messages not yet claimed, with its reason."""
    messages_move(
        where="campaign_id = %s AND status = ANY(%s)",
        params=[campaign.pk, statuses],
        to=to,
        source=MessageTransition.Source.OPERATOR,
        extra_set=extra_set,
        detail=json.dumps({"reason": reason}),
    )


@transaction.atomic
def campaign_pause(*, campaign: Campaign, actor: Actor = None) -> Campaign:
    """Stop sending: queued messages go back to pending, so no new claim can succeed."""
    campaign = _campaign_transition(
        campaign=campaign,
        allowed_from=(Campaign.Status.RUNNING, Campaign.Status.SCHEDULED),
        to=Campaign.Status.PAUSED,
        actor=actor,
    )
    _messages_take_back(
        campaign=campaign, statuses=[S.QUEUED], to=S.PENDING, reason="campaign_paused"
    )
    return campaign


@transaction.atomic
def campaign_resume(*, campaign: Campaign, actor: Actor = None) -> Campaign:
    """Continue a paused campaign; the dispatcher picks up its pending messages."""
    return _campaign_transition(
        campaign=campaign,
        allowed_from=(Campaign.Status.PAUSED,),
        to=Campaign.Status.RUNNING,
        actor=actor,
    )


@transaction.atomic
def campaign_cancel(*, campaign: Campaign, actor: Actor = None) -> Campaign:
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
    _messages_take_back(
        campaign=campaign,
        statuses=[S.PENDING, S.QUEUED],
        to=S.CANCELED,
        reason="campaign_canceled",
        extra_set=", cancel_reason = 'campaign_canceled', finished_at = now()",
    )
    return campaign
