"""The live rules of an event type are cached per process and loaded again whenever a rule, a
version, a policy or a velocity aggregate changed: by a service, the admin or raw SQL, even
twice in one transaction.
"""

import pytest
from django.db import connection, transaction

from decisions import services
from decisions.live_rules import live_rules_for, rules_generation
from decisions.models import Rule, RuleVersion
from decisions.tests.factories import register_event, rule_with_version

pytestmark = pytest.mark.django_db

EVENT_TYPE = "loan_application"


def test_it_reads_only_the_generation_while_nothing_changed(django_assert_num_queries):
    rule_with_version(key="limit", condition="event.amount > 100", outcome="review")
    first = live_rules_for(event_type=EVENT_TYPE)

    with django_assert_num_queries(1):
        again = live_rules_for(event_type=EVENT_TYPE)

    assert again is first
    assert [row.rule.key for row in again.rows] == ["limit"]


def test_it_loads_again_after_each_write_in_one_transaction():
    current = rule_with_version(key="limit", condition="event.amount > 100", outcome="review")
    assert register_event({"amount": 50}).outcome == "approve"
    replacement = services.rule_version_create(
        rule=current.rule, condition="event.amount > 10", outcome="decline", priority=10
    )

    services.rule_version_publish(version=replacement)
    after_publish = register_event({"amount": 50})
    services.rule_version_retire(version=replacement)
    after_retire = register_event({"amount": 50})

    assert (after_publish.outcome, after_publish.matched_version_id) == (
        "decline",
        replacement.pk,
    )
    assert (after_retire.outcome, after_retire.matched_version_id) == ("approve", None)


def test_a_canary_and_a_change_of_its_share_are_seen_by_the_next_event():
    current = rule_with_version(key="limit", condition="event.amount > 100", outcome="review")
    register_event({"amount": 500, "customer_id": "c-1"})
    candidate = services.rule_version_create(
        rule=current.rule, condition="event.amount > 100", outcome="decline", priority=10
    )

    services.rule_version_canary(version=candidate, percent=1, key="customer_id")
    small = live_rules_for(event_type=EVENT_TYPE)
    services.rule_version_canary(version=candidate, percent=99, key="customer_id")
    large = live_rules_for(event_type=EVENT_TYPE)

    assert large is not small
    assert {row.pk: row.canary_percent for row in small.rows}[candidate.pk] == 1
    assert {row.pk: row.canary_percent for row in large.rows}[candidate.pk] == 99
    decision = register_event({"amount": 500, "customer_id": "c-1"})
    assert decision.arms["limit"]["percent"] == 99


def test_a_policy_change_is_seen_by_the_next_event():
    rule_with_version(key="limit", condition="event.amount > 100", outcome="review")
    assert register_event({"amount": 1}).outcome == "approve"

    services.policy_save(event_type=EVENT_TYPE, strategy="first_match", default_outcome="decline")

    assert register_event({"amount": 1}).outcome == "decline"


def test_a_renamed_rule_is_named_so_in_the_next_reasons():
    version = rule_with_version(key="limit", condition="event.amount > 100", outcome="review")
    register_event({"amount": 500})

    services.rule_update(rule=version.rule, name="Large amount", description="")
    decision = register_event({"amount": 500})

    assert decision.reasons == [{"kind": "rule", "code": "limit", "text": "Large amount"}]


def test_a_changed_velocity_window_is_read_by_the_next_event():
    from decisions.models import VelocityAggregate

    services.velocity_aggregate_save(
        event_type=EVENT_TYPE,
        name="per_customer",
        function="count",
        key_field="customer_id",
        window_seconds=3600,
    )
    rule_with_version(key="busy", condition="velocity.per_customer >= 1", outcome="review")
    register_event({"customer_id": "c-1"})
    assert live_rules_for(event_type=EVENT_TYPE).aggregates["per_customer"].window_seconds == 3600

    # Raw SQL, past every service: the trigger still moves the rules generation.
    VelocityAggregate.objects.filter(name="per_customer").update(window_seconds=1)
    cached = live_rules_for(event_type=EVENT_TYPE)

    assert cached.aggregates["per_customer"].window_seconds == 1
    assert cached.aggregates_named(["per_customer", "undeclared"]) == [
        cached.aggregates["per_customer"]
    ]


def test_a_write_that_bypasses_the_services_is_seen_too():
    version = rule_with_version(key="limit", condition="event.amount > 100", outcome="review")
    assert register_event({"amount": 500}).outcome == "review"

    RuleVersion.objects.filter(pk=version.pk).update(status=RuleVersion.Status.RETIRED)

    assert register_event({"amount": 500}).outcome == "approve"


def test_a_rolled_back_change_leaves_the_rules_as_they_were():
    version = rule_with_version(key="limit", condition="event.amount > 100", outcome="review")
    before = rules_generation()
    seen = []

    def change_then_fail() -> None:
        with transaction.atomic():
            Rule.objects.filter(pk=version.rule_id).update(name="Renamed")
            seen.append(rules_generation())
            RuleVersion.objects.filter(pk=version.pk).update(status=RuleVersion.Status.RETIRED)
            seen.append(register_event({"amount": 500}).outcome)
            raise RuntimeError("roll back")

    with pytest.raises(RuntimeError):
        change_then_fail()

    assert seen[0] != before
    assert seen[1] == "approve"
    assert rules_generation() == before
    assert register_event({"amount": 500}).outcome == "review"


def test_every_write_statement_moves_the_generation_to_a_new_value():
    seen = [rules_generation()]
    rule = services.rule_create(key="limit", name="Limit", event_type=EVENT_TYPE)
    seen.append(rules_generation())
    Rule.objects.filter(pk=rule.pk).update(name="Limit 2")
    seen.append(rules_generation())
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM decisions_policy WHERE event_type = 'none'")
    seen.append(rules_generation())

    assert None not in seen
    assert len(set(seen)) == len(seen)
