"""Erasure: the number, attributes and bodies go; counts and the consent ledger (by hash) stay."""

import pytest
from django.db import connection

from campaigns import selectors, services
from campaigns.exceptions import ContactErased
from campaigns.models import ConsentEvent, Contact, Message, WebhookRequest
from campaigns.pii import phone_hash
from campaigns.services.contacts import consent_refusal
from campaigns.tests.factories import campaign_factory, contact_factory
from core.errors import InvalidInput
from core.models import AuditEntry

pytestmark = pytest.mark.django_db

PHONE = "+14155552671"
REASON = "Erasure request DPO-1183, identity verified."


def _contact_with_history() -> tuple[Contact, list[int]]:
    contact = contact_factory(phone=PHONE)
    contact_factory()  # someone else, who must keep everything
    campaign = campaign_factory()
    services.campaign_launch(campaign=campaign)
    mine = Message.objects.filter(contact=contact)
    sent = mine.get()
    Message.objects.filter(pk=sent.pk).update(
        status="delivered", error_message=f"Carrier note about {PHONE}"
    )
    services.consent_change(contact=contact, topic="news", action="opt_out", source="api")
    services.webhook_store(
        kind="inbound", url="http://x/", headers={}, body="From=%2B14155552671&Body=Hello+there"
    )
    services.webhook_store(kind="status", url="http://x/", headers={}, body="To=%2B14155550000")
    return contact, [sent.pk]


def test_erasure_leaves_the_counts_and_the_ledger_by_hash_and_no_number_or_body():
    contact, message_ids = _contact_with_history()
    ledger_before = list(
        ConsentEvent.objects.filter(contact=contact).values_list("id", "topic", "action")
    )
    erasure = services.contact_erase(contact=contact, reason=REASON)
    contact.refresh_from_db()
    assert contact.phone == f"erased:{phone_hash(PHONE)[:16]}"
    assert (contact.attributes, contact.number_time_zones, contact.time_zone) == ({}, "", "")
    assert contact.erased_at is not None
    assert contact.opted_out
    messages = list(Message.objects.filter(contact=contact).values_list("id", "status", "body"))
    assert messages == [(message_ids[0], "delivered", "")]
    assert Message.objects.get(pk=message_ids[0]).error_message == ""
    kept = ConsentEvent.objects.filter(phone_hash=phone_hash(PHONE)).order_by("id")
    assert list(kept.values_list("id", "topic", "action")) == [
        *sorted(ledger_before),
        (kept.last().pk, "*", "opt_out"),
    ]
    assert kept.last().source == "erasure"
    assert selectors.consent_ledger_for_number(phone="(415) 555-2671")[0]["source"] == "erasure"
    assert erasure.as_dict() == {
        "contact": contact.pk,
        "phone_hash": phone_hash(PHONE),
        "messages_erased": 1,
        "messages_canceled": 0,
        "consent_events_kept": 3,
        "webhooks_erased": 1,
    }
    entry = AuditEntry.objects.get(action="contact.erase")
    assert entry.after["reason"] == REASON
    # No trace of the number or the body in any campaigns table (the other contact aside).
    with connection.cursor() as cursor:
        for table in ("campaigns_contact", "campaigns_message", "campaigns_webhookrequest"):
            cursor.execute(
                f"SELECT count(*) FROM {table} WHERE row_to_json({table})::text LIKE %s",
                ["%4155552671%"],
            )
            assert cursor.fetchone() == (0,), table
    assert WebhookRequest.objects.filter(body__contains="4155550000").count() == 1


def test_an_erased_contact_can_never_be_messaged_or_opted_in_again(role_user):
    contact = contact_factory(phone=PHONE)
    services.contact_erase(contact=contact, reason=REASON)
    contact.refresh_from_db()
    assert consent_refusal(contact=contact, topic="transactional") == "opted_out"
    ledger = ConsentEvent.objects.count()
    with pytest.raises(ContactErased):
        services.consent_change(
            contact=contact,
            topic="*",
            action="opt_in",
            source="admin",
            reason="asked",
            actor=role_user("compliance"),
        )
    with pytest.raises(ContactErased):
        services.contact_update(contact=contact, attributes={"plan": "gold"})
    with pytest.raises(ContactErased):
        services.contact_erase(contact=contact, reason=REASON)
    assert ConsentEvent.objects.count() == ledger


def test_erasure_cancels_the_messages_not_yet_sent():
    contact = contact_factory(phone=PHONE)
    services.campaign_launch(campaign=campaign_factory())
    erasure = services.contact_erase(contact=contact, reason=REASON)
    message = Message.objects.get(contact=contact)
    assert (message.status, message.cancel_reason, message.body) == (
        "canceled",
        "contact_erased",
        "",
    )
    assert erasure.messages_canceled == 1
    assert list(message.transitions.values_list("from_status", "to_status")) == [
        ("pending", "canceled")
    ]


@pytest.mark.parametrize("reason", ["", "   ", "x" * 501])
def test_an_erasure_without_a_reason_is_refused_and_changes_nothing(reason):
    contact = contact_factory(phone=PHONE)
    trail = AuditEntry.objects.count()
    with pytest.raises(InvalidInput) as raised:
        services.contact_erase(contact=contact, reason=reason)
    assert list(raised.value.errors) == ["reason"]
    contact.refresh_from_db()
    assert (contact.phone, contact.erased_at, contact.opted_out) == (PHONE, None, False)
    assert AuditEntry.objects.count() == trail


def test_every_ledger_row_carries_the_hash_of_its_number():
    contact = contact_factory(phone=PHONE)
    services.consent_change(contact=contact, topic="*", action="opt_out", source="sms_keyword")
    hashes = set(ConsentEvent.objects.filter(contact=contact).values_list("phone_hash", flat=True))
    assert hashes == {phone_hash(PHONE)}
    assert len(phone_hash(PHONE)) == 64
    assert phone_hash(PHONE) != phone_hash("+14155552672")


def test_the_hash_depends_on_the_salt(settings):
    before = phone_hash(PHONE)
    settings.PII_HASH_SALT = "another-salt"
    assert phone_hash(PHONE) != before


def test_the_contact_create_audit_names_the_number_by_its_hash_only():
    contact = contact_factory(phone=PHONE)
    entry = AuditEntry.objects.get(action="contact.create", target_id=str(contact.pk))
    assert entry.after == {"phone_hash": phone_hash(PHONE)}


def test_the_contact_update_audit_names_attributes_never_their_values():
    contact = contact_factory(phone=PHONE)
    services.contact_update(contact=contact, attributes={"first_name": "Grace", "plan": "gold"})
    entry = AuditEntry.objects.get(action="contact.update", target_id=str(contact.pk))
    assert entry.after["attributes"] == ["first_name", "plan"]
    assert "Grace" not in str(entry.before) + str(entry.after)
