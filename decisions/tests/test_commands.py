"""The demo data command."""

from io import StringIO

import pytest
from django.core.management import call_command

from decisions import replay_selectors
from decisions.models import (
    Decision,
    NamedList,
    Policy,
    Rule,
    RuleVersion,
    VelocityAggregate,
)

pytestmark = pytest.mark.django_db


def test_it_loads_demo_rules_once_and_every_demo_decision_replays():
    first = StringIO()
    call_command("load_demo_rules", "--events", "15", stdout=first)
    call_command("load_demo_rules", "--events", "15", stdout=StringIO())

    assert Policy.objects.filter(event_type="loan_application").count() == 1
    assert NamedList.objects.count() == 2
    assert Rule.objects.count() == 8
    assert RuleVersion.objects.filter(status="published").count() == 8
    assert list(VelocityAggregate.objects.values_list("name", flat=True)) == ["applications_24h"]
    assert RuleVersion.objects.filter(status="shadow").count() == 1
    # Four eyes on for the demo's event type, with one draft waiting for a rule approver.
    assert Policy.objects.get(event_type="loan_application").requires_approval is True
    waiting = RuleVersion.objects.get(status="draft")
    assert (waiting.rule.key, waiting.approvals.get().status) == ("loan-to-income", "requested")
    assert "loan_application now needs approval to publish" in first.getvalue()
    assert Decision.objects.count() == 15
    assert "8 published rules, 15 new events" in first.getvalue()
    assert len({decision.outcome for decision in Decision.objects.all()}) > 1
    actions = [action for decision in Decision.objects.all() for action in decision.actions]
    assert actions
    assert {action["status"] for action in actions} == {"queued"}  # demo numbers are valid
    assert all(
        replay_selectors.decision_replay(decision=decision)["matches"]
        for decision in Decision.objects.all()
    )
