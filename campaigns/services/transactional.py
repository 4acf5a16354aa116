"""Transactional messages: one message outside any campaign, the contract `decisions` calls."""

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from campaigns.config import compile_template, render_template
from campaigns.enqueue import messages_send_on_commit
from campaigns.exceptions import ReferenceConflict
from campaigns.models import Contact, Message, MessageTransition
from campaigns.phones import phone_normalize
from campaigns.services.contacts import consent_refusal, contact_fields
from campaigns.services.states import S
from campaigns.sms import sms_length
from core.errors import InvalidInput


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
        contact = Contact.objects.create(phone=e164, **contact_fields(e164, ""))
    reason = consent_refusal(contact=contact, topic=topic)
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
        messages_send_on_commit([message.pk])
    return message
