"""The engine and the decide path: strategies, shadows, errors, lists, determinism."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from core.errors import InvalidInput
from core.expressions import ExpressionError
from decisions import engine, replay_selectors, services
from decisions.models import Decision, Event, RuleVersion
from decisions.services import events
from decisions.tests.factories import register_event, rule_with_version

pytestmark = pytest.mark.django_db


def test_it_approves_by_default_when_an_event_type_has_no_policy_or_rules():
    decision = register_event({"amount": 10}, event_type="brand_new_type")

    assert decision.outcome == "approve"
    assert decision.matched_version is None
    assert decision.trace == []
    assert decision.policy["strategy"] == "first_match"


def test_it_decides_by_the_first_matching_rule_in_priority_order():
    rule_with_version(
        key="review-big", condition="event.amount > 1000", outcome="review", priority=20
    )
    decline = rule_with_version(
        key="decline-huge", condition="event.amount > 5000", outcome="decline", priority=10
    )

    decision = register_event({"amount": 9000})

    assert decision.outcome == "decline"
    assert decision.matched_version == decline
    assert [(entry["rule"], entry["result"], entry["decided"]) for entry in decision.trace] == [
        ("decline-huge", "true", True),
        ("review-big", "true", False),
    ]
    assert decision.engine_us > 0


def test_it_breaks_priority_ties_by_rule_key():
    rule_with_version(key="b-rule", condition="true", outcome="review", priority=5)
    a_rule = rule_with_version(key="a-rule", condition="true", outcome="decline", priority=5)

    decision = register_event({"amount": 1})

    assert decision.matched_version == a_rule


def test_it_collects_and_picks_the_most_severe_outcome_under_the_collect_strategy():
    services.policy_save(
        event_type="loan_application",
        strategy="collect",
        default_outcome="approve",
        outcome_precedence=["decline", "review", "approve"],
    )
    rule_with_version(key="review-first", condition="true", outcome="review", priority=1)
    decline = rule_with_version(
        key="decline-later", condition="true", outcome="decline", priority=9
    )

    decision = register_event({"amount": 1})

    assert decision.outcome == "decline"
    assert decision.matched_version == decline
    assert decision.policy["strategy"] == "collect"


def test_it_uses_the_policy_default_outcome_when_nothing_matches():
    services.policy_save(
        event_type="loan_application", strategy="first_match", default_outcome="review"
    )
    rule_with_version(condition="event.amount > 1000", outcome="decline")

    decision = register_event({"amount": 5})

    assert decision.outcome == "review"
    assert decision.matched_version is None
    assert decision.trace[0]["result"] == "false"


def test_it_records_an_evaluation_error_as_error_and_does_not_match():
    rule_with_version(key="needs-income", condition="event.income < 100", outcome="decline")

    decision = register_event({"amount": 5})

    assert decision.outcome == "approve"
    (entry,) = decision.trace
    assert entry["result"] == "error"
    assert "income" in entry["error"]


def test_it_treats_a_non_boolean_result_as_an_error():
    rule_with_version(key="number", condition="event.amount + 1", outcome="decline")

    decision = register_event({"amount": 5})

    assert decision.trace[0]["result"] == "error"
    assert "boolean" in decision.trace[0]["error"]
    assert decision.outcome == "approve"


def test_it_evaluates_shadow_versions_without_letting_them_decide():
    rule_with_version(key="big", condition="event.amount > 1000", outcome="review", priority=10)
    rule_with_version(key="big", condition="event.amount > 100", outcome="decline", status="shadow")

    decision = register_event({"amount": 500})

    assert decision.outcome == "approve"
    assert decision.shadow_outcome == "decline"
    assert [(entry["status"], entry["result"]) for entry in decision.trace] == [
        ("published", "false"),
        ("shadow", "true"),
    ]
    assert not any(entry["decided"] for entry in decision.trace)


def test_it_reads_named_lists_and_snapshots_their_contents():
    services.named_list_save(name="blocked_countries", values=["KP", "IR"])
    rule_with_version(
        key="blocked", condition="event.country in lists.blocked_countries", outcome="decline"
    )

    declined = register_event({"country": "KP"})
    services.named_list_save(name="blocked_countries", values=["IR"])
    approved = register_event({"country": "KP"})

    assert declined.outcome == "decline"
    assert declined.lists_snapshot == {"blocked_countries": {"version": 1, "values": ["IR", "KP"]}}
    assert approved.outcome == "approve"
    assert approved.lists_snapshot["blocked_countries"]["version"] == 2


def test_it_types_list_values_by_the_list_value_type():
    services.named_list_save(name="vip_ids", values=["7", "42"], value_type="integer")
    rule_with_version(key="vip", condition="event.customer_id in lists.vip_ids", outcome="approve")
    rule_with_version(key="rest", condition="true", outcome="review", priority=99)

    assert register_event({"customer_id": 42}).outcome == "approve"
    assert register_event({"customer_id": 43}).outcome == "review"


def test_it_sees_now_as_the_event_received_time():
    rule_with_version(
        key="old", condition='now < timestamp("2000-01-01T00:00:00Z")', outcome="decline"
    )

    decision = register_event({})

    assert decision.trace[0]["result"] == "false"


def test_it_exposes_risk_to_rules_when_a_score_is_given():
    version = rule_with_version(key="risky", condition="risk.score > 0.7", outcome="decline")
    compiled = engine.CompiledVersion(
        version_id=version.pk,
        rule_key="risky",
        number=1,
        status="published",
        priority=1,
        outcome="decline",
        program=engine.compile_condition("risk.score > 0.7"),
    )
    event = register_event({}).event
    kwargs = {
        "event_type": "loan_application",
        "payload": {},
        "received_at": event.received_at,
        "versions": [compiled],
        "policy": engine.PolicySpec(event_type="loan_application"),
        "lists": {},
    }

    scored = engine.decide(**kwargs, risk=engine.RiskInput(score=0.9, label="high"))
    unscored = engine.decide(**kwargs)

    assert scored.outcome == "decline"
    assert unscored.outcome == "approve"
    assert unscored.trace[0]["result"] == "error"


def test_it_names_effective_until_when_the_window_ends_before_it_starts():
    rule = services.rule_create(key="window", name="Window", event_type="loan_application")
    start = timezone.now()

    with pytest.raises(InvalidInput) as raised:
        services.rule_version_create(
            rule=rule,
            condition="true",
            outcome="review",
            priority=1,
            effective_from=start,
            effective_until=start - timedelta(hours=1),
        )

    assert list(raised.value.errors) == ["effective_until"]
    assert not RuleVersion.objects.filter(rule=rule).exists()


def test_it_rejects_bad_cel_with_its_position_and_stores_nothing():
    rule = services.rule_create(key="broken", name="Broken", event_type="loan_application")

    with pytest.raises(ExpressionError) as raised:
        services.rule_version_create(
            rule=rule, condition="event.amount >", outcome="decline", priority=1
        )

    assert raised.value.line == 1
    assert raised.value.column == 15
    assert RuleVersion.objects.filter(rule=rule).count() == 0


def test_it_rejects_unknown_variables_in_a_condition():
    rule = services.rule_create(key="unknown", name="Unknown", event_type="loan_application")

    with pytest.raises(ExpressionError, match="Unknown variable payload"):
        services.rule_version_create(
            rule=rule, condition="payload.amount > 1", outcome="decline", priority=1
        )


def test_it_rolls_back_event_and_decision_when_registering_fails(monkeypatch):
    rule_with_version(condition="true", outcome="decline")

    def explode(*, decision):
        raise RuntimeError("dispatch failed")

    monkeypatch.setattr(events, "decision_actions_dispatch", explode)

    # The caller's atomic(): event_register takes no savepoint of its own.
    with pytest.raises(RuntimeError), transaction.atomic():
        register_event({"amount": 1})

    assert Event.objects.count() == 0
    assert Decision.objects.count() == 0


def test_it_replays_every_decision_exactly():
    services.named_list_save(name="trusted", values=["c1"])
    rule_with_version(
        key="trusted", condition="event.customer in lists.trusted", outcome="approve", priority=1
    )
    rule_with_version(key="big", condition="event.amount > 1000", outcome="review", priority=5)
    rule_with_version(key="big", condition="event.amount > 10", outcome="decline", status="shadow")
    rule_with_version(key="errs", condition="event.missing == 1", outcome="decline", priority=7)
    for payload in (
        {"customer": "c1", "amount": 5000},
        {"customer": "x", "amount": 5000},
        {"customer": "x", "amount": 5},
    ):
        register_event(payload)
    # Later changes must not affect replays of earlier decisions.
    services.named_list_save(name="trusted", values=[])
    rule_with_version(key="big", condition="event.amount > 1", outcome="decline", priority=5)

    reports = [
        replay_selectors.decision_replay(decision=decision) for decision in Decision.objects.all()
    ]

    assert len(reports) == 3
    assert all(report["matches"] for report in reports), reports
