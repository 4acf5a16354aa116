"""A deciding rule's actions reach campaigns: the decision and the message it queued."""

import pytest

from campaigns.models import Message
from campaigns.tests.factories import approved_template
from decisions.tests.factories import register_event, rule_with_version

pytestmark = pytest.mark.django_db


def test_it_resolves_actions_of_the_deciding_rule_only():
    approved_template(key="reviewing", body="We are reviewing.")
    approved_template(key="never-sent", body="Never sent.")
    rule_with_version(
        key="sms-review",
        condition="event.amount > 10",
        outcome="review",
        actions=[{"type": "sms", "template": "reviewing", "to": "event.phone"}],
    )
    rule_with_version(
        key="shadow-sms",
        condition="true",
        outcome="decline",
        status="shadow",
        actions=[{"type": "sms", "template": "never-sent", "to": "event.phone"}],
    )

    decision = register_event({"amount": 50, "phone": "+4915112345678"})

    message = Message.objects.get()
    assert decision.actions == [
        {
            "type": "sms",
            "template": "reviewing",
            "to": "+4915112345678",
            "to_expression": "event.phone",
            "rule": "sms-review",
            "version": 1,
            "status": "queued",
            "message_id": message.pk,
        }
    ]
    assert message.body == "We are reviewing."
