"""Staff flows for velocity aggregates and canaries in the Django admin, through the test client."""

import pytest
from django.urls import reverse

from core.models import AuditEntry
from decisions import services
from decisions.models import Policy, RuleVersion, VelocityAggregate
from decisions.tests.factories import register_event, rule_with_version

pytestmark = pytest.mark.django_db

POLICY = {
    "event_type": "payment",
    "strategy": "first_match",
    "default_outcome": "approve",
    "outcome_precedence": "",
}


def inline(*rows: dict, initial: int = 0) -> dict:
    """The velocity inline's formset fields for `rows`."""
    fields = {"aggregates-TOTAL_FORMS": str(len(rows)), "aggregates-INITIAL_FORMS": str(initial)}
    for index, row in enumerate(rows):
        fields |= {f"aggregates-{index}-{name}": value for name, value in row.items()}
    return fields


def test_it_declares_a_velocity_aggregate_on_a_policy_through_the_service(staff_client):
    response = staff_client.post(
        reverse("admin:decisions_policy_add"),
        POLICY
        | inline(
            {
                "name": "tx_1h",
                "function": "count",
                "key_field": "customer_id",
                "field": "",
                "window_seconds": "3600",
            }
        ),
    )

    assert response.status_code == 302
    aggregate = VelocityAggregate.objects.get()
    assert (aggregate.policy.event_type, aggregate.name, aggregate.window_seconds) == (
        "payment",
        "tx_1h",
        3600,
    )
    assert AuditEntry.objects.filter(action="velocity.create", target_id="payment").exists()


def test_it_refuses_to_remove_an_aggregate_a_rule_reads_and_a_rule_reading_an_undeclared_one(
    staff_client,
):
    aggregate = services.velocity_aggregate_save(
        event_type="payment", name="tx_1h", function="count", key_field="customer_id",
        window_seconds=3600,
    )  # fmt: skip
    rule = rule_with_version(key="fast", event_type="payment", condition="velocity.tx_1h > 2").rule
    policy = Policy.objects.get()

    removal = staff_client.post(
        reverse("admin:decisions_policy_change", args=[policy.pk]),
        POLICY
        | inline(
            {
                "id": str(aggregate.pk),
                "policy": str(policy.pk),
                "name": "tx_1h",
                "function": "count",
                "key_field": "customer_id",
                "field": "",
                "window_seconds": "3600",
                "DELETE": "on",
            },
            initial=1,
        ),
    )
    undeclared = staff_client.post(
        reverse("admin:decisions_rule_new_version", args=[rule.pk]),
        {"condition": "velocity.tx_5m > 1", "outcome": "review", "priority": "5", "actions": "[]"},
    )

    assert removal.status_code == 200
    assert "velocity.tx_1h is read by fast v1" in removal.content.decode()
    assert VelocityAggregate.objects.filter(pk=aggregate.pk).exists()
    assert undeclared.status_code == 200
    assert "Undeclared velocity aggregate: tx_5m." in undeclared.content.decode()
    assert rule.versions.count() == 1


def test_it_starts_a_canary_from_the_rule_page_and_compares_the_arms(staff_client):
    control = rule_with_version(key="limit", condition="event.amount > 100", outcome="review")
    draft = services.rule_version_create(
        rule=control.rule, condition="event.amount > 10", outcome="decline", priority=10
    )
    url = reverse("admin:decisions_rule_canary", args=[control.rule.pk, draft.number])

    refused = staff_client.post(url, {"percent": "100", "key": "customer_id"})
    started = staff_client.post(url, {"percent": "50", "key": "customer_id"})
    outcomes = [register_event({"customer_id": n, "amount": 50}).outcome for n in range(12)]
    page = staff_client.get(reverse("admin:decisions_rule_change", args=[control.rule.pk]))

    assert refused.status_code == 200
    assert 'data-testid="errors-percent"' in refused.content.decode()
    assert started.status_code == 302
    draft.refresh_from_db()
    assert (draft.status, draft.canary_percent) == (RuleVersion.Status.CANARY, 50)
    content = page.content.decode()
    assert 'data-testid="canary-comparison"' in content
    declined = outcomes.count("decline")
    assert f"<td>{declined}</td><td>decline {declined}" in content
    assert f"<td>{12 - declined}</td><td>approve {12 - declined}" in content
    assert 'data-testid="canary-2"' in content  # the button to change its share
