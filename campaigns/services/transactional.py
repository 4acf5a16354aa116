"""Transactional messages: one message outside any campaign, the contract `decisions` calls."""

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from campaigns.config import compile_template, render_template
from campaigns.enqueue import messages_send_on_commit
from campaigns.exceptions import ReferenceConflict
from campaigns.guards import DAILY_CAP, country_refusal
from campaigns.models import Contact, Message, MessageTransition
from campaigns.phones import phone_normalize
from campaigns.services.contacts import consent_refusal, contact_fields
from campaigns.services.states import S
from campaigns.services.templates import sms_template_for_sending
from campaigns.sms import sms_length
from core.errors import InvalidInput

DAILY_CAP_WINDOW = timedelta(hours=24)


def _daily_cap_refusal(contact: Contact, now: Any) -> str:
    """`daily_cap` when this number already had its transactional messages for 24 hours.

    The caller holds the contact's row lock, so two concurrent sends cannot both pass.
    """
    recent = (
        Message.objects.filter(
            contact=contact, campaign__isnull=True, created_at__gte=now - DAILY_CAP_WINDOW
        )
        .exclude(status=S.CANCELED)
        .count()
    )
    return DAILY_CAP if recent >= settings.SMS_TRANSACTIONAL_DAILY_CAP_PER_NUMBER else ""


@transaction.atomic
def transactional_message_send(
    *,
    phone: str,
    context: dict[str, Any],
    template: str | None = None,
    template_key: str | None = None,
    topic: str = "transactional",
    reference: str,
) -> Message:
    """Render and enqueue one message outside any campaign; idempotent per `reference`.

    The text is either `template` (a Jinja text from trusted code) or `template_key`, an
    approved SmsTemplate (what rule actions send: an unknown or unapproved key is an
    InvalidInput naming `template`, so nothing unapproved ever goes out).

    Safe inside the caller's transaction: the send is enqueued on commit, so a rollback leaves
    no message and no SMS. The same reference returns the existing message (never a second
    send); a different phone for a used reference is a ReferenceConflict. A number outside
    SMS_ALLOWED_COUNTRIES (`country_not_allowed`), one that already had
    SMS_TRANSACTIONAL_DAILY_CAP_PER_NUMBER messages in 24 hours (`daily_cap`), a contact who
    opted out (globally or from `topic`) or whose number is known bad gets a `canceled`
    message with `cancel_reason` set (no exception, nothing enqueued), so the caller can record
    what happened. Invalid phone or template raise InvalidInput.
    """
    if not reference or len(reference) > 200:
        raise InvalidInput("A reference is required.", errors={"reference": ["1 to 200."]})
    if (template is None) == (template_key is None):
        raise InvalidInput(
            "Give a template text or an approved template key.",
            errors={"template": ["Exactly one of template, template_key."]},
        )
    e164 = phone_normalize(phone)
    existing = Message.objects.filter(reference=reference).select_related("contact").first()
    if existing is not None:
        if existing.contact.phone != e164:
            raise ReferenceConflict(f"Reference {reference!r} was used for another number.")
        return existing
    if template_key is not None:
        template = sms_template_for_sending(key=template_key).body
    assert template is not None
    body = render_template(compile_template(template), {**context, "phone": e164})
    if not body:
        raise InvalidInput("The message is empty.", errors={"template": ["Renders empty."]})
    contact = Contact.objects.select_for_update().filter(phone=e164).first()
    if contact is None:
        contact = Contact.objects.create(phone=e164, **contact_fields(e164, ""))
    now = timezone.now()
    reason = (
        country_refusal(phone=e164, region=contact.region)
        or consent_refusal(contact=contact, topic=topic)
        or _daily_cap_refusal(contact, now)
    )
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
        messages_send_on_commit([[message.pk]])
    return message
