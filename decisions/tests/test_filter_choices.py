"""The decisions page's outcome choices: every outcome decided or decidable, each once."""

import pytest

from decisions import selectors
from decisions.tests.factories import register_event, rule_with_version

pytestmark = pytest.mark.django_db


def test_the_outcomes_are_those_of_decisions_and_rule_versions_each_once():
    rule_with_version(key="big", condition="event.amount > 1000", outcome="decline")
    rule_with_version(key="mid", condition="event.amount > 100", outcome="review", priority=20)
    rule_with_version(key="never", condition="false", outcome="escalate", priority=30)
    for amount in (5, 500, 5000, 6000, 7):
        register_event({"amount": amount})

    choices = selectors.decision_filter_choices()

    assert choices["outcomes"] == ["approve", "decline", "escalate", "review"]


def test_there_are_no_outcomes_before_any_decision_or_rule():
    assert selectors.decision_filter_choices()["outcomes"] == []
