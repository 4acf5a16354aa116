"""Rule lifecycle: versions, publishing, shadows, retirement, rollback, lists, policies, audit."""

import pytest
from django.db import IntegrityError, transaction

from core.errors import InvalidInput
from core.models import AuditEntry
from decisions import selectors, services
from decisions.exceptions import DuplicateRule, InvalidActions, RuleVersionStateConflict
from decisions.models import NamedList, RuleVersion
from decisions.tests.factories import rule_with_version

pytestmark = pytest.mark.django_db


def test_it_numbers_versions_per_rule_and_starts_them_as_drafts():
    first = rule_with_version(status="draft")
    second = rule_with_version(status="draft", condition="event.amount > 2")

    assert (first.number, second.number) == (1, 2)
    assert {first.status, second.status} == {"draft"}
    assert first.list_names == []


def test_it_retires_the_previous_published_version_when_publishing():
    first = rule_with_version()
    second = rule_with_version(condition="event.amount > 2000")

    first.refresh_from_db()
    assert first.status == "retired"
    assert second.status == "published"
    assert RuleVersion.objects.filter(rule=first.rule, status="published").count() == 1


def test_it_refuses_to_publish_a_retired_version():
    version = rule_with_version(status="retired")

    with pytest.raises(RuleVersionStateConflict):
        services.rule_version_publish(version=version)

    version.refresh_from_db()
    assert version.status == "retired"


def test_it_enforces_one_published_version_per_rule_in_the_database():
    version = rule_with_version()
    draft = rule_with_version(status="draft", condition="false")

    with pytest.raises(IntegrityError), transaction.atomic():
        RuleVersion.objects.filter(pk=draft.pk).update(status="published")

    assert RuleVersion.objects.get(pk=version.pk).status == "published"


def test_it_replaces_a_shadow_with_a_new_shadow_and_publishes_a_shadow():
    first = rule_with_version(status="shadow")
    second = rule_with_version(status="shadow", condition="event.amount > 3")

    first.refresh_from_db()
    assert first.status == "retired"
    published = services.rule_version_publish(version=second)
    assert published.status == "published"


def test_it_refuses_to_shadow_a_published_version():
    version = rule_with_version()

    with pytest.raises(RuleVersionStateConflict):
        services.rule_version_shadow(version=version)


def test_it_rolls_back_by_publishing_an_old_version_as_a_new_one():
    first = rule_with_version(condition="event.amount > 1")
    rule_with_version(condition="event.amount > 2")

    restored = services.rule_version_rollback(version=first)

    assert restored.number == 3
    assert restored.status == "published"
    assert restored.condition == first.condition
    assert restored.change_note == "Rollback to version 1."
    assert RuleVersion.objects.get(rule=first.rule, number=2).status == "retired"


def test_it_audits_every_change_with_before_and_after(staff_user):
    version = rule_with_version(actor=staff_user)
    services.rule_version_retire(version=version, actor=staff_user)

    actions = list(
        AuditEntry.objects.order_by("id").values_list("action", "target_id", "actor_label")
    )
    assert actions == [
        ("rule.create", "high-amount", "staff"),
        ("rule_version.create", "high-amount:1", "staff"),
        ("rule_version.publish", "high-amount:1", "staff"),
        ("rule_version.retire", "high-amount:1", "staff"),
    ]
    retire = AuditEntry.objects.get(action="rule_version.retire")
    assert (retire.before["status"], retire.after["status"]) == ("published", "retired")
    assert len(selectors.audit_entries_for_rule(rule=version.rule)) == 4


def test_it_refuses_a_duplicate_rule_key():
    rule_with_version(status="draft")

    with pytest.raises(DuplicateRule):
        services.rule_create(key="high-amount", name="Again", event_type="loan_application")


@pytest.mark.parametrize(
    ("actions", "field"),
    [
        ({"type": "sms"}, "actions"),
        ([{"type": "email"}], "actions[0].type"),
        ([{"type": "sms", "template": "Hi"}], "actions[0].to"),
        ([{"type": "sms", "template": "Hi", "to": "event.phone", "x": 1}], "actions[0].x"),
        ([{"type": "sms", "template": "Hi", "to": "event.phone +"}], "actions[0].to"),
    ],
)
def test_it_rejects_malformed_actions(actions, field):
    rule = services.rule_create(key="act", name="Act", event_type="loan_application")

    with pytest.raises(InvalidInput) as raised:
        services.rule_version_create(
            rule=rule, condition="true", outcome="review", priority=1, actions=actions
        )

    assert field in raised.value.errors
    assert RuleVersion.objects.count() == 0


def test_it_validates_list_values_against_the_value_type_and_audits_changes():
    with pytest.raises(InvalidInput, match="not a valid integer"):
        services.named_list_save(name="ids", values=["1", "two"], value_type="integer")
    assert not NamedList.objects.exists()

    services.named_list_save(name="ids", values=["1", "2"], value_type="integer")
    services.named_list_save(name="ids", values=["1", "2"], value_type="integer")  # no change
    named_list = services.named_list_save(name="ids", values=["3"], value_type="integer")

    assert named_list.version == 2
    entries = AuditEntry.objects.filter(target_type="named_list").order_by("id")
    assert [entry.action for entry in entries] == ["named_list.create", "named_list.update"]
    assert entries[1].before["values"] == ["1", "2"]
    assert entries[1].after["values"] == ["3"]


def test_it_warns_about_duplicate_priorities_and_unreachable_rules():
    rule_with_version(key="catch-all", condition="true", outcome="review", priority=1)
    rule_with_version(key="same-a", condition="event.x > 1", outcome="decline", priority=5)
    rule_with_version(key="same-b", condition="event.x  >  1", outcome="review", priority=5)

    warnings = selectors.policy_static_check(event_type="loan_application")

    codes = [(warning.code, warning.message.split(" ")[1]) for warning in warnings]
    assert ("duplicate_priority", "same-a,") in codes
    assert ("unreachable_rule", "same-a") in codes
    assert ("unreachable_rule", "same-b") in codes


def test_it_validates_policies():
    with pytest.raises(InvalidInput):
        services.policy_save(
            event_type="loan_application",
            strategy="collect",
            default_outcome="approve",
            outcome_precedence=["decline", "decline"],
        )
    with pytest.raises(InvalidInput):
        services.policy_save(event_type="loan_application", strategy="random", default_outcome="x")


def test_it_refuses_actions_that_are_not_a_list():
    rule = services.rule_create(key="act2", name="Act", event_type="loan_application")
    with pytest.raises(InvalidActions):
        services.rule_version_create(
            rule=rule, condition="true", outcome="review", priority=1, actions="sms"
        )


def test_it_refuses_a_condition_reading_a_list_that_does_not_exist():
    rule = services.rule_create(key="lists", name="Lists", event_type="loan_application")

    with pytest.raises(InvalidInput, match="unknown list vip"):
        services.rule_version_create(
            rule=rule, condition="event.id in lists.vip", outcome="approve", priority=1
        )

    services.named_list_save(name="vip", values=["1"])
    version = services.rule_version_create(
        rule=rule, condition="event.id in lists.vip", outcome="approve", priority=1
    )
    assert version.list_names == ["vip"]
