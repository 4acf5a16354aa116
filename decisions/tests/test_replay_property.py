"""Property: whatever the payload, rules and later changes, every decision replays exactly."""

import functools
import uuid
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaigns.tests.factories import approved_template
from decisions import replay_selectors, services
from decisions.exceptions import DuplicateEvent
from decisions.models import Decision
from decisions.tests.factories import register_event, rule_with_version
from records.selectors import demo_applicants

_applicants = functools.cache(demo_applicants)  # read the data set once per process


def applicant(row: int, **changes):
    """A real applicant of the shipped data set (row `row`), with optional changes."""
    return {**_applicants()[row], **changes}


pytestmark = pytest.mark.django_db

payloads = st.fixed_dictionaries(
    {},
    optional={
        "amount": st.one_of(st.integers(-10, 100_000), st.floats(0, 1e5, allow_nan=False)),
        "country": st.sampled_from(["DE", "KP", "FR", ""]),
        "age": st.integers(0, 120),
        "tags": st.lists(st.sampled_from(["vip", "new", "fraud"]), max_size=3),
        "phone": st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12),
        # A few customers, so the velocity aggregates see earlier events of the same one.
        "customer_id": st.sampled_from(["c1", "c2", "c3", 7]),
        "card_id": st.sampled_from(["k1", "k2", "k3"]),
    },
)
# Scored or not; scored applicants are real rows of the data set, so similar cases exist.
applicants = st.one_of(st.none(), st.integers(0, 40))


@pytest.fixture
def rule_set(db, credit_model):
    services.named_list_save(name="blocked", values=["KP"])
    for name, function, field, window in [
        ("tx_1h", "count", "", 3600),
        ("amount_1d", "sum", "amount", 86400),
        ("cards_1w", "distinct", "card_id", 7 * 86400),
    ]:
        services.velocity_aggregate_save(
            event_type="loan_application",
            name=name,
            function=function,
            key_field="customer_id",
            field=field,
            window_seconds=window,
        )
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
    # Half the customers get the next version of "young" (a canary); replay checks the arm.
    services.rule_version_canary(
        version=rule_with_version(
            key="young", condition="event.age < 21", outcome="review", status="draft"
        ),
        percent=50,
        key="customer_id",
    )
    rule_with_version(
        key="fast",
        condition="velocity.tx_1h >= 2 || velocity.amount_1d > 20000.0 || velocity.cards_1w > 1",
        outcome="review",
        priority=5,
    )
    rule_with_version(
        key="like-declined",
        condition="similar.count > 0 && similar.declined_share > 0.3 && similar.mean_score > 0.2",
        outcome="decline",
        priority=6,
    )
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
@given(payload=payloads, applicant_row=applicants)
def test_it_replays_any_decision_exactly_even_after_rules_and_lists_change(
    rule_set, payload, applicant_row
):
    decision = services.event_register(
        event_type="loan_application",
        payload=payload,
        idempotency_key=str(uuid.uuid4()),
        client_scope="test",
        fingerprint="0" * 64,
        risk_request=None
        if applicant_row is None
        else {"model_id": "credit-default", "features": applicant(applicant_row)},
    )
    services.named_list_save(name="blocked", values=[str(uuid.uuid4())])  # a later list change

    report = replay_selectors.decision_replay(decision=decision)

    assert report["matches"], report["differences"]
    assert report["replayed"]["outcome"] == decision.outcome
    # Velocity is computed for every event with a customer, similar cases for scored ones.
    assert "velocity" in decision.history
    assert ("similar" in decision.history) == (applicant_row is not None)
    assert decision.reasons


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

    # The caller's atomic(): event_register takes no savepoint of its own.
    with pytest.raises(DuplicateEvent), transaction.atomic():
        services.event_register(**arguments)

    assert Decision.objects.count() == 1
