"""The compiled rule set is cached per set of live versions: a publish, a retirement or a
scheduled take-over changes the set, so the very next event decides with the new one."""

from datetime import timedelta

import pytest
from django.utils import timezone

from decisions import engine, services
from decisions.live_rules import live_rules_for
from decisions.tests.factories import register_event, rule_with_version

pytestmark = pytest.mark.django_db


def test_the_same_live_versions_reuse_one_compiled_rule_set():
    rule_with_version(key="limit", condition="event.amount > 100", outcome="review")
    register_event({"amount": 500})
    live = live_rules_for(event_type="loan_application")
    cached = dict(live._rule_sets)

    register_event({"amount": 1})

    assert live_rules_for(event_type="loan_application") is live
    assert cached == live._rule_sets
    assert [[version.rule_key for version in rule_set] for rule_set in cached.values()] == [
        ["limit"]
    ]


def test_a_publish_is_seen_by_the_next_event():
    current = rule_with_version(key="limit", condition="event.amount > 100", outcome="review")
    assert register_event({"amount": 500}).matched_version_id == current.pk
    replacement = services.rule_version_create(
        rule=current.rule, condition="event.amount > 10", outcome="decline", priority=10
    )

    services.rule_version_publish(version=replacement)
    decision = register_event({"amount": 50})

    assert (decision.outcome, decision.matched_version_id) == ("decline", replacement.pk)


def test_a_retirement_is_seen_by_the_next_event():
    current = rule_with_version(key="limit", condition="event.amount > 100", outcome="review")
    assert register_event({"amount": 500}).outcome == "review"

    services.rule_version_retire(version=current)

    assert register_event({"amount": 500}).matched_version_id is None


def test_a_scheduled_take_over_is_seen_by_the_first_event_after_its_time(monkeypatch):
    current = rule_with_version(key="limit", condition="event.amount > 100", outcome="review")
    start = timezone.now().replace(microsecond=0) + timedelta(hours=1)
    upcoming = services.rule_version_create(
        rule=current.rule,
        condition="event.amount > 10",
        outcome="decline",
        priority=10,
        effective_from=start,
    )
    services.rule_version_publish(version=upcoming)
    outcomes = []
    for instant in (start - timedelta(microseconds=1), start):
        monkeypatch.setattr(timezone, "now", lambda instant=instant: instant)
        outcomes.append(register_event({"amount": 500}).matched_version_id)

    assert outcomes == [current.pk, upcoming.pk]


def test_a_full_cache_starts_again_rather_than_growing(monkeypatch):
    monkeypatch.setattr(engine, "_RULE_SET_CACHE_LIMIT", 2)
    monkeypatch.setattr(engine, "_RULE_SET_CACHE", {})
    program = engine.compile_condition("true")
    for version_id in range(5):
        engine.rule_set_cached(
            [
                engine.CompiledVersion(
                    version_id=version_id,
                    rule_key="r",
                    number=1,
                    status=engine.PUBLISHED,
                    priority=1,
                    outcome="decline",
                    program=program,
                )
            ]
        )

    assert len(engine._RULE_SET_CACHE) <= 2
