"""Property: whatever the payload, rules and later changes, every decision replays exactly."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaigns.tests.factories import approved_template
from decisions import selectors, services
from decisions.exceptions import DuplicateEvent
from decisions.models import Decision
from decisions.tests.factories import register_event, rule_with_version

pytestmark = pytest.mark.django_db

payloads = st.fixed_dictionaries(
    {},
    optional={
        "amount": st.one_of(st.integers(-10, 100_000), st.floats(0, 1e5, allow_nan=False)),
        "country": st.sampled_from(["DE", "KP", "FR", ""]),
        "age": st.integers(0, 120),
        "tags": st.lists(st.sampled_from(["vip", "new", "fraud"]), max_size=3),
        "phone": st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12),
    },
)


@pytest.fixture
def rule_set(db):
    services.named_list_save(name="blocked", values=["KP"])
    services.policy_save(
        event_type="loan_application",
        strategy="collect",
        default_outcome="approve",
        outcome_precedence=["decline", "review", "approve"],
    )
    rule_with_version(key="blocked", condition="event.country in lists.blocked", outcome="decline")
    rule_with_version(key="amount", condition="event.amount > 5000", outcome="review", priority=2)
    rule_with_version(
        key="amount", condition="event.amount > 50", outcome="review", status="shadow"
    )
    rule_with_version(key="young", condition="event.age < 18", outcome="decline", priority=3)
    rule_with_version(
        key="fraud",
        condition='"fraud" in event.tags',
        outcome="decline",
        priority=4,
        actions=[{"type": "sms", "template": approved_template().key, "to": "event.phone"}],
    )


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(payload=payloads)
def test_it_replays_any_decision_exactly_even_after_rules_and_lists_change(rule_set, payload):
    decision = register_event(payload)
    services.named_list_save(name="blocked", values=[str(uuid.uuid4())])  # a later list change

    report = selectors.decision_replay(decision=decision)

    assert report["matches"], report["differences"]
    assert report["replayed"]["outcome"] == decision.outcome


def test_it_skips_versions_outside_their_effective_window():
    rule = services.rule_create(key="later", name="Later", event_type="loan_application")
    version = services.rule_version_create(
        rule=rule,
        condition="true",
        outcome="decline",
        priority=1,
        effective_from=timezone.now() + timedelta(days=1),
    )
    services.rule_version_publish(version=version)

    decision = register_event({})

    assert decision.outcome == "approve"
    assert decision.trace == []


def test_it_refuses_a_second_event_for_the_same_key_and_scope():
    arguments = {
        "event_type": "loan_application",
        "payload": {},
        "idempotency_key": "same",
        "client_scope": "test",
        "fingerprint": "0" * 64,
    }
    services.event_register(**arguments)

    with pytest.raises(DuplicateEvent):
        services.event_register(**arguments)

    assert Decision.objects.count() == 1
