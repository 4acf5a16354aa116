"""Named lists and policies over the API, through the admin's services, with their scopes."""

import pytest

from core.access import Scope
from core.models import AuditEntry
from core.tests.identities import key_client, person, session_client
from decisions.models import NamedList, Policy
from decisions.tests.factories import register_event, rule_with_version

pytestmark = pytest.mark.django_db


def test_a_list_is_created_replaced_and_read_and_rules_see_its_new_contents():
    writer, reader = key_client(Scope.RULES_WRITE), key_client(Scope.RULES_READ)

    created = writer.put(
        "/api/v1/lists/blocked_countries/",
        {"values": ["KP", "IR", "KP", " "], "description": "Sanctioned."},
        format="json",
    )
    rule_with_version(condition="event.country in lists.blocked_countries", outcome="decline")
    replaced = writer.put("/api/v1/lists/blocked_countries/", {"values": ["SY"]}, format="json")
    listed = reader.get("/api/v1/lists/")
    read = reader.get("/api/v1/lists/blocked_countries/")

    assert created.status_code == 200
    assert created.json()["values"] == ["IR", "KP"]
    assert created.json()["version"] == 1
    assert replaced.json()["version"] == 2
    assert listed.json()["results"] == [
        {**{key: read.json()[key] for key in read.json() if key != "values"}, "size": 1}
    ]
    assert read.json()["values"] == ["SY"]
    assert register_event({"country": "SY"}).outcome == "decline"
    assert register_event({"country": "KP"}).outcome == "approve"
    assert list(
        AuditEntry.objects.filter(target_type="named_list")
        .order_by("id")
        .values_list("action", flat=True)
    ) == ["named_list.create", "named_list.update"]


def test_a_list_refuses_values_not_of_its_type_naming_their_line_and_writes_nothing():
    writer = key_client(Scope.RULES_WRITE)

    refused = writer.put(
        "/api/v1/lists/limits/", {"value_type": "integer", "values": [5, "x", True]}, format="json"
    )
    typed = writer.put(
        "/api/v1/lists/limits/", {"value_type": "integer", "values": [5, "seven"]}, format="json"
    )

    assert refused.status_code == 400
    assert list(refused.json()["errors"]) == ["values.2"]
    assert typed.status_code == 400
    assert typed.json()["errors"]["values"] == ["Line 2: 'seven' is not a valid integer."]
    assert not NamedList.objects.exists()


def test_a_read_key_cannot_write_lists_or_policies():
    reader = key_client(Scope.RULES_READ)

    lists = reader.put("/api/v1/lists/x/", {"values": []}, format="json")
    policies = reader.put(
        "/api/v1/policies/loan_application/",
        {"strategy": "collect", "default_outcome": "approve"},
        format="json",
    )

    assert (lists.status_code, policies.status_code) == (403, 403)
    assert not NamedList.objects.exists()
    assert not Policy.objects.exists()


def test_a_policy_is_set_over_the_api_and_decides_the_next_event():
    rule_with_version(key="big", condition="event.amount > 10", outcome="review", priority=1)
    rule_with_version(key="huge", condition="event.amount > 100", outcome="decline", priority=2)
    writer = key_client(Scope.RULES_WRITE)

    saved = writer.put(
        "/api/v1/policies/loan_application/",
        {
            "strategy": "collect",
            "default_outcome": "approve",
            "outcome_precedence": ["decline", "review", "approve"],
        },
        format="json",
    )
    read = key_client(Scope.RULES_READ).get("/api/v1/policies/loan_application/")
    missing = key_client(Scope.RULES_READ).get("/api/v1/policies/transfer/")

    assert saved.status_code == 200
    assert read.json()["outcome_precedence"] == ["decline", "review", "approve"]
    assert register_event({"amount": 500}).outcome == "decline"
    assert missing.status_code == 404


def test_only_a_rule_approver_turns_four_eyes_off_over_the_api():
    body = {"strategy": "first_match", "default_outcome": "approve", "requires_approval": True}
    writer = key_client(Scope.RULES_WRITE)
    assert writer.put("/api/v1/policies/loan_application/", body, format="json").status_code == 200

    refused = writer.put(
        "/api/v1/policies/loan_application/",
        {**body, "requires_approval": False},
        format="json",
    )
    approver = session_client(person("rule editor", "rule approver"))
    allowed = approver.put(
        "/api/v1/policies/loan_application/",
        {**body, "requires_approval": False},
        format="json",
    )

    assert refused.status_code == 403
    assert allowed.status_code == 200
    assert Policy.objects.get().requires_approval is False
