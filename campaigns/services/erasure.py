"""Erasure: a contact's number, attributes and message bodies go; counts and the ledger stay."""

from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import quote, quote_plus

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from campaigns.exceptions import ContactErased
from campaigns.models import (
    ConsentEvent,
    Contact,
    Message,
    MessageTransition,
    SimulatedMessage,
    WebhookRequest,
)
from campaigns.pii import erased_marker, phone_hash
from campaigns.services.contacts import consent_apply, reason_valid
from campaigns.services.states import messages_move
from core.audit import Actor, audit_record

# Messages not yet handed to a worker are canceled; one in a worker's hands is canceled there,
# because the erasure's opt-out is checked again just before the provider call.
NOT_YET_CLAIMED = [str(Message.Status.PENDING), str(Message.Status.QUEUED)]


@dataclass(frozen=True)
class Erasure:
    """What an erasure did (counts only: it names no one)."""

    contact: int
    phone_hash: str
    messages_erased: int
    messages_canceled: int
    consent_events_kept: int
    webhooks_erased: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@transaction.atomic
def contact_erase(*, contact: Contact, reason: str, actor: Actor = None) -> Erasure:
    """Erase a contact's personal data, keep anonymous counts and the consent ledger.

    The number becomes `erased:<hash prefix>`; attributes, zone and every message body (and
    provider error text, which can quote the number) are emptied; raw webhooks that carry the
    number are emptied; the contact is opted out for good (an erased contact's consent cannot
    change), and its ledger rows stay, keyed by the number's salted hash.
    """
    reason = reason_valid(reason, needed_for="An erasure")
    contact = Contact.objects.select_for_update().get(pk=contact.pk)
    if contact.erased_at is not None:
        raise ContactErased("This contact was already erased.")
    phone = contact.phone
    hashed = phone_hash(phone)
    # The opt-out that keeps them unreachable, written while the ledger can still hash the number.
    consent_apply(
        contact=contact,
        topic=ConsentEvent.ALL_TOPICS,
        action=ConsentEvent.Action.OPT_OUT,
        source=ConsentEvent.Source.ERASURE,
        evidence={"reason": reason},
    )
    ledger = ConsentEvent.objects.filter(contact=contact)
    ledger.exclude(phone_hash=hashed).update(phone_hash=hashed)
    canceled = messages_move(
        where="contact_id = %s AND status = ANY(%s)",
        params=[contact.pk, NOT_YET_CLAIMED],
        to=Message.Status.CANCELED,
        source=MessageTransition.Source.OPERATOR,
        extra_set=", cancel_reason = %s, finished_at = now()",
        extra_params=["contact_erased"],
        detail='{"reason": "contact_erased"}',
    )
    erased = Message.objects.filter(contact=contact).update(
        body="", error_message="", updated_at=timezone.now()
    )
    SimulatedMessage.objects.filter(to=phone).update(to="", body="")
    carrying = Q()
    for form in {phone, quote_plus(phone), quote(phone, safe="")}:
        carrying |= Q(body__contains=form)
    webhooks = WebhookRequest.objects.filter(carrying).update(
        body="", note="erased with its contact"
    )
    contact.phone = erased_marker(phone)
    contact.attributes = {}
    contact.time_zone = ""
    contact.number_time_zones = ""
    contact.erased_at = timezone.now()
    contact.save(
        update_fields=[
            "phone",
            "attributes",
            "time_zone",
            "number_time_zones",
            "erased_at",
            "updated_at",
        ]
    )
    erasure = Erasure(
        contact=contact.pk,
        phone_hash=hashed,
        messages_erased=erased,
        messages_canceled=canceled,
        consent_events_kept=ledger.count(),
        webhooks_erased=webhooks,
    )
    audit_record(
        actor=actor,
        action="contact.erase",
        target_type="contact",
        target_id=contact.pk,
        after={"reason": reason, **erasure.as_dict()},
    )
    return erasure
