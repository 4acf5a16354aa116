"""A deciding rule's actions reach campaigns: the decision and the message it queued."""

import pytest

from campaigns import services as campaign_services
from campaigns.models import Message
from campaigns.tests.factories import approved_template
from decisions.exceptions import InvalidActions
from decisions.models import RuleVersion
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


def test_it_refuses_a_rule_action_whose_template_nobody_approved():
    campaign_services.sms_template_create(key="unapproved", body="Send money to ...")
    for key in ("unapproved", "We are reviewing your loan."):  # a draft, or inline text
        with pytest.raises(InvalidActions) as refused:
            rule_with_version(
                key="sneaky", actions=[{"type": "sms", "template": key, "to": "event.phone"}]
            )
        assert "actions[0].template" in refused.value.errors
    assert not RuleVersion.objects.exists()


def test_it_sends_nothing_through_a_rule_action_to_a_country_outside_the_allow_list(
    django_capture_on_commit_callbacks,
):
    approved_template(key="reviewing", body="We are reviewing.")
    rule_with_version(
        key="sms-review",
        condition="true",
        outcome="review",
        actions=[{"type": "sms", "template": "reviewing", "to": "event.phone"}],
    )
    with django_capture_on_commit_callbacks() as callbacks:
        decision = register_event({"amount": 50, "phone": "+81312345678"})  # Japan

    action = decision.actions[0]
    assert (action["status"], action["reason"]) == ("canceled", "country_not_allowed")
    assert Message.objects.get().status == "canceled"
    assert callbacks == []  # no send was enqueued
