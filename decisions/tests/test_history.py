"""Rules that read history: velocity aggregates, similar cases, and the reasons of a decision."""

import functools

import pytest
from django.urls import reverse

from core.errors import Conflict, InvalidInput
from decisions import replay_selectors, services, velocity
from decisions.models import Decision
from decisions.tests.factories import register_event, rule_with_version
from records.selectors import demo_applicants

_applicants = functools.cache(demo_applicants)  # read the data set once per process


def applicant(row: int, **changes):
    """A real applicant of the shipped data set (row `row`), with optional changes."""
    return {**_applicants()[row], **changes}


pytestmark = pytest.mark.django_db

HOUR = 3600


@pytest.fixture
def customer_velocity(db):
    """Per customer: events in the last hour, amount summed over a day, cards in a week."""
    declare = services.velocity_aggregate_save
    declare(
        event_type="payment",
        name="tx_1h",
        function="count",
        key_field="customer_id",
        window_seconds=HOUR,
    )
    declare(
        event_type="payment",
        name="amount_24h",
        function="sum",
        key_field="customer_id",
        field="amount",
        window_seconds=24 * HOUR,
    )
    declare(
        event_type="payment", name="cards_7d", function="distinct", key_field="customer_id",
        field="card_id", window_seconds=7 * 24 * HOUR,
    )  # fmt: skip


def pay(customer: str | None, **payload) -> Decision:
    if customer is not None:
        payload["customer_id"] = customer
    return register_event(payload, event_type="payment")


def test_it_declines_a_customers_third_event_in_an_hour(customer_velocity):
    rule = rule_with_version(
        key="too-fast",
        event_type="payment",
        condition="velocity.tx_1h >= 2",
        outcome="decline",
    )

    first, second = pay("c1", amount=10), pay("c1", amount=20)
    other = pay("c2", amount=5)
    third = pay("c1", amount=30)

    assert [first.outcome, second.outcome, other.outcome, third.outcome] == [
        "approve",
        "approve",
        "approve",
        "decline",
    ]
    assert third.matched_version == rule
    # Only what a live rule reads is computed, and the events before this one are counted.
    assert [d.history for d in (first, second, third)] == [
        {"velocity": {"tx_1h": 0}},
        {"velocity": {"tx_1h": 1}},
        {"velocity": {"tx_1h": 2}},
    ]
    assert third.reasons[0] == {"kind": "rule", "code": "too-fast", "text": "Too Fast"}
    for decision in (first, second, other, third):
        assert replay_selectors.decision_replay(decision=decision)["matches"]


def test_it_sums_counts_distinct_values_and_leaves_out_events_without_the_key(customer_velocity):
    rule_with_version(
        key="card-testing",
        event_type="payment",
        condition="velocity.cards_7d >= 2 && velocity.amount_24h > 25.0 && velocity.tx_1h > 0",
        outcome="review",
    )
    pay("c1", amount=10, card_id="k1")
    pay("c1", amount="not a number", card_id="k1")
    pay("c1", amount=20.5, card_id="k2")
    anonymous = pay(None, amount=99)

    decision = pay("c1", amount=1, card_id="k3")

    assert decision.history["velocity"] == {"amount_24h": 30.5, "cards_7d": 2, "tx_1h": 3}
    assert decision.outcome == "review"
    assert anonymous.history == {"velocity": {}}
    assert anonymous.trace[0]["result"] == "error"
    assert anonymous.outcome == "approve"


def test_it_refuses_a_rule_that_reads_an_undeclared_aggregate(customer_velocity):
    rule = services.rule_create(key="slow", name="Slow", event_type="payment")

    with pytest.raises(InvalidInput) as refused:
        services.rule_version_create(
            rule=rule, condition="velocity.tx_5m > 3", outcome="decline", priority=1
        )

    assert refused.value.errors == {"condition": ["Undeclared velocity aggregate: tx_5m."]}
    assert not rule.versions.exists()


def test_it_answers_an_undeclared_aggregate_with_a_problem_naming_the_condition(
    api_client, customer_velocity
):
    services.rule_create(key="slow", name="Slow", event_type="payment")

    response = api_client.post(
        "/api/v1/rules/slow/versions/",
        {"condition": 'velocity["tx_5m"] > 3', "outcome": "decline", "priority": 1},
        format="json",
    )

    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/problem+json")
    assert response.json()["errors"] == {"condition": ["Undeclared velocity aggregate: tx_5m."]}


def test_it_keeps_an_aggregate_that_a_rule_version_still_reads(customer_velocity):
    rule_with_version(key="too-fast", event_type="payment", condition="velocity.tx_1h > 5")

    with pytest.raises(Conflict):
        services.velocity_aggregate_delete(event_type="payment", name="tx_1h")
    services.velocity_aggregate_delete(event_type="payment", name="cards_7d")

    assert sorted(velocity.declared_names(event_type="payment")) == ["amount_24h", "tx_1h"]


def test_it_computes_no_history_when_no_live_rule_reads_it(customer_velocity):
    rule_with_version(key="plain", event_type="payment", condition="event.amount > 100")

    assert pay("c1", amount=1).history == {}


def scored(features: dict, **payload) -> Decision:
    return services.event_register(
        event_type="loan_application",
        payload=payload,
        idempotency_key=str(len(Decision.objects.all()) + 1) + "-similar",
        client_scope="test",
        fingerprint="0" * 64,
        risk_request={"model_id": "credit-default", "features": features},
    )


def test_it_reviews_an_applicant_whose_similar_earlier_cases_were_declined(
    credit_model, staff_client
):
    rule_with_version(key="flagged", condition="event.flagged", outcome="decline", priority=1)
    rule_with_version(
        key="like-declined",
        condition="similar.count >= 3 && similar.declined_share >= 0.5",
        outcome="review",
        priority=2,
    )
    # Three near copies of one applicant were declined, two others were not.
    declined = [scored(applicant(0, age=30 + n), flagged=True) for n in range(3)]
    [scored(applicant(n), flagged=False) for n in (5, 9)]

    decision = scored(applicant(0, age=29), flagged=False)

    assert [d.outcome for d in declined] == ["decline"] * 3
    assert decision.outcome == "review"
    similar = decision.history["similar"]
    assert similar["count"] == 5
    assert similar["declined_share"] == pytest.approx(3 / 5)
    nearest = {case["decision_id"] for case in similar["neighbours"][:3]}
    assert nearest == {d.pk for d in declined}
    assert similar["mean_score"] == pytest.approx(
        sum(case["risk_score"] for case in similar["neighbours"]) / 5
    )
    replay = replay_selectors.decision_replay(decision=decision)
    assert replay["matches"], replay["differences"]
    # The decision page lists the neighbours, linked to their decisions, and the reasons.
    page = staff_client.get(reverse("decisions:detail", args=[decision.pk])).content.decode()
    assert "5 of the 10 nearest earlier cases: declined share 0.60" in page
    for case in declined:
        assert f'href="{reverse("decisions:detail", args=[case.pk])}"' in page
    assert "<code>like-declined</code> Like Declined" in page


def test_it_gives_the_deciding_rule_and_the_drivers_towards_risk_as_reasons(credit_model):
    rule_with_version(key="risky", condition="risk.score > 0.0", outcome="review")

    decision = scored(applicant(1))

    rule_reason, *drivers = decision.reasons
    assert rule_reason == {"kind": "rule", "code": "risky", "text": "Risky"}
    assert 1 <= len(drivers) <= 4
    contributions = [driver["contribution"] for driver in drivers]
    assert contributions == sorted(contributions, reverse=True)
    assert all(value > 0 for value in contributions)
    assert {driver["kind"] for driver in drivers} == {"driver"}
    assert all(driver["text"] and driver["text"] != driver["code"] for driver in drivers)


def test_it_names_the_policy_default_when_no_rule_decides():
    decision = register_event({"amount": 1})

    assert decision.reasons == [
        {
            "kind": "policy",
            "code": "default",
            "text": "No rule matched; the policy's default outcome is approve.",
        }
    ]


def test_it_backtests_a_draft_that_reads_velocity_the_live_rules_never_computed(
    customer_velocity,
):
    decisions = [pay("c1", amount=n) for n in range(3)] + [pay("c2", amount=1)]
    draft = rule_with_version(
        key="too-fast",
        event_type="payment",
        condition="velocity.tx_1h >= 2",
        outcome="decline",
        status="draft",
    )

    backtest = services.backtest_create(candidates=[{"rule_key": "too-fast", "version": 1}])

    assert [d.history for d in decisions] == [{}] * 4
    assert draft.status == "draft"
    assert backtest.results["changed"] == 1
    assert backtest.results["transitions"] == [
        {
            "from": "approve",
            "to": "decline",
            "count": 1,
            "example_event_ids": [decisions[2].event_id],
        }
    ]


def test_it_declares_lists_and_removes_aggregates_over_the_api(api_client):
    body = {
        "event_type": "payment",
        "name": "tx_1h",
        "function": "count",
        "key_field": "customer_id",
        "window_seconds": 3600,
    }

    declared = api_client.post("/api/v1/velocity-aggregates/", body, format="json")
    no_field = api_client.post(
        "/api/v1/velocity-aggregates/", {**body, "name": "sum_1h", "function": "sum"}, format="json"
    )
    rule_with_version(key="fast", event_type="payment", condition="velocity.tx_1h > 3")
    listed = api_client.get("/api/v1/velocity-aggregates/", {"event_type": "payment"})
    still_read = api_client.delete(f"/api/v1/velocity-aggregates/{declared.json()['id']}/")

    assert declared.status_code == 201
    assert declared.json() | body == declared.json()
    assert no_field.status_code == 400
    assert list(no_field.json()["errors"]) == ["field"]
    assert [row["name"] for row in listed.json()["results"]] == ["tx_1h"]
    assert still_read.status_code == 409
    assert "fast v1" in still_read.json()["detail"]


def _drop_velocity_indexes() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for name in velocity_indexes():
            cursor.execute(f'DROP INDEX IF EXISTS "{name}"')


def velocity_indexes() -> set[str]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'decisions_event' "
            "AND indexname LIKE 'event\\_velocity\\_%%'"
        )
        return {name for (name,) in cursor.fetchall()}


@pytest.mark.django_db(transaction=True)  # CREATE/DROP INDEX CONCURRENTLY: outside a transaction
def test_it_keeps_an_index_per_velocity_key_only_while_an_aggregate_keys_on_it(customer_velocity):
    by_card = {"event_type": "payment", "function": "count", "window_seconds": HOUR}
    services.velocity_aggregate_save(name="per_card", key_field="card_id", **by_card)
    long_key = "k" * 64
    # Indexes outlive a transactional test's flush: start without the ones this test reads.
    velocity.velocity_indexes_sync()
    _drop_velocity_indexes()

    built, _ = velocity.velocity_indexes_sync()
    services.velocity_aggregate_delete(event_type="payment", name="per_card")
    _, dropped = velocity.velocity_indexes_sync()
    services.velocity_aggregate_delete(event_type="payment", name="tx_1h")
    unchanged = velocity.velocity_indexes_sync()

    assert built == ["event_velocity_card_id_idx", "event_velocity_customer_id_idx"]
    assert dropped == ["event_velocity_card_id_idx"]
    assert unchanged == ([], [])  # two aggregates still key on customer_id
    assert velocity_indexes() == {"event_velocity_customer_id_idx"}
    assert len(velocity.velocity_index_name(long_key)) <= 63
    assert velocity.velocity_index_name(long_key) != velocity.velocity_index_name(long_key + "x")
