"""Who may do what with events, decisions and rules: scoped keys, roles, pages and the admin."""

import pytest
from django.urls import reverse

from campaigns.tests.factories import approved_template
from core.access import Scope
from core.models import AuditEntry
from core.tests.identities import key_client, person, session_client
from decisions.models import Decision, Event, RuleVersion
from decisions.tests.factories import register_event, rule_with_version

pytestmark = pytest.mark.django_db

EVENT = {"type": "loan_application", "payload": {"amount": 5000, "phone": "+447700900123"}}


def post_event(client, key="key-1", body=EVENT):
    return client.post("/api/v1/events/", body, format="json", HTTP_IDEMPOTENCY_KEY=key)


# --- API scopes --------------------------------------------------------------------------------


def test_a_key_scoped_predict_cannot_publish_a_rule():
    draft = rule_with_version(status="draft")
    client = key_client(Scope.PREDICT)
    entries = AuditEntry.objects.count()

    response = client.post(f"/api/v1/rules/{draft.rule.key}/versions/{draft.number}/publish/")

    assert response.status_code == 403
    assert response["Content-Type"].startswith("application/problem+json")
    assert "rules:write" in response.json()["detail"]
    draft.refresh_from_db()
    assert draft.status == RuleVersion.Status.DRAFT
    assert AuditEntry.objects.count() == entries


def test_a_rules_read_key_reads_rules_but_cannot_write_them():
    rule_with_version()
    client = key_client(Scope.RULES_READ)

    assert client.get("/api/v1/rules/").status_code == 200
    created = client.post(
        "/api/v1/rules/",
        {"key": "new-rule", "name": "New", "event_type": "loan_application"},
        format="json",
    )
    assert created.status_code == 403
    assert client.get("/api/v1/rules/new-rule/").status_code == 404


def test_a_key_without_events_write_cannot_submit_an_event():
    response = post_event(key_client(Scope.DECISIONS_READ))

    assert response.status_code == 403
    assert not Event.objects.exists()


def test_an_anonymous_caller_gets_401_problem_details():
    from rest_framework.test import APIClient

    response = APIClient().get("/api/v1/decisions/")

    assert response.status_code == 401
    assert response["Content-Type"].startswith("application/problem+json")


def test_a_key_without_decisions_read_reads_its_own_decisions_but_not_another():
    submitter = key_client(Scope.EVENTS_WRITE, name="submitter")
    own = post_event(submitter).json()["decision"]["id"]
    other = register_event({"amount": 1}, scope="someone-else").pk

    mine = submitter.get(f"/api/v1/decisions/{own}/")
    theirs = submitter.get(f"/api/v1/decisions/{other}/")
    listed = submitter.get("/api/v1/decisions/").json()

    assert mine.status_code == 200
    assert mine.json()["id"] == own
    assert theirs.status_code == 403
    assert "decisions:read" in theirs.json()["detail"]
    assert [row["id"] for row in listed["results"]] == [own]
    assert submitter.post(f"/api/v1/decisions/{own}/replay/").status_code == 403


def test_a_key_with_neither_scope_cannot_read_decisions():
    register_event({"amount": 1})
    client = key_client(Scope.PREDICT)

    assert client.get("/api/v1/decisions/").status_code == 403
    assert client.get(f"/api/v1/decisions/{Decision.objects.get().pk}/").status_code == 403


def test_backtests_need_backtests_write_to_run_and_rules_read_to_read(settings):
    draft = rule_with_version(status="draft")
    body = {
        "rule_key": draft.rule.key,
        "version": draft.number,
        "window_start": "2026-01-01T00:00:00Z",
        "window_end": "2026-01-02T00:00:00Z",
    }

    refused = key_client(Scope.RULES_WRITE).post("/api/v1/backtests/", body, format="json")
    ran = key_client(Scope.BACKTESTS_WRITE).post("/api/v1/backtests/", body, format="json")
    read = key_client(Scope.RULES_READ).get(f"/api/v1/backtests/{ran.json()['id']}/")

    assert refused.status_code == 403
    assert ran.status_code == 201
    assert read.status_code == 200


# --- Personal data in decisions ----------------------------------------------------------------


def test_a_decision_is_masked_without_pii_read_and_the_unmasked_read_is_audited():
    rule_with_version(
        condition="event.amount > 1000",
        actions=[{"type": "sms", "template": approved_template().key, "to": "event.phone"}],
    )
    decision_id = post_event(key_client(Scope.EVENTS_WRITE)).json()["decision"]["id"]

    masked = key_client(Scope.DECISIONS_READ, name="reader").get(
        f"/api/v1/decisions/{decision_id}/"
    )
    assert not AuditEntry.objects.filter(action="pii.read").exists()
    unmasked = key_client(Scope.DECISIONS_READ, Scope.PII_READ, name="officer").get(
        f"/api/v1/decisions/{decision_id}/"
    )

    assert masked.json()["event"]["payload"] == {"amount": "•••", "phone": "•••"}
    assert masked.json()["actions"][0]["to"] == "+44 7•••• ••123"
    assert unmasked.json()["event"]["payload"] == EVENT["payload"]
    assert unmasked.json()["actions"][0]["to"] == "+447700900123"
    audit = AuditEntry.objects.get(action="pii.read")
    assert (audit.target_type, audit.target_id) == ("decision", str(decision_id))


# --- Pages and navigation ----------------------------------------------------------------------


def test_an_analyst_sees_decisions_and_a_campaign_manager_does_not(client):
    decision = register_event({"amount": 5000, "phone": "+447700900123"})
    analyst = session_client(person("analyst"), client)

    page = analyst.get(f"/decisions/{decision.pk}/")
    nav = analyst.get("/").content.decode()

    assert page.status_code == 200
    assert "+447700900123" not in page.content.decode()
    assert "•••" in page.content.decode()
    assert 'href="/decisions/"' in nav
    assert 'href="/campaigns/"' in nav
    client.force_login(person("campaign manager"))
    assert client.get("/decisions/").status_code == 403
    assert client.post(f"/decisions/{decision.pk}/replay/").status_code == 403
    assert client.get("/decisions/panel/").status_code == 403
    nav = client.get("/").content.decode()
    assert 'href="/decisions/"' not in nav
    assert 'href="/records/"' not in nav
    assert 'href="/predict/"' not in nav
    assert 'id="panel-decisions"' not in nav
    assert 'id="panel-campaigns"' in nav


def test_compliance_sees_the_payload_unmasked_and_the_read_is_audited(client):
    decision = register_event({"amount": 5000, "phone": "+447700900123"})
    client.force_login(person("compliance"))

    page = client.get(f"/decisions/{decision.pk}/")

    assert "+447700900123" in page.content.decode()
    assert AuditEntry.objects.filter(
        action="pii.read", target_type="decision", target_id=str(decision.pk)
    ).exists()


def test_decision_pages_send_anonymous_visitors_to_the_login_page(client):
    response = client.get("/decisions/")

    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


# --- Admin ------------------------------------------------------------------------------------


def transition_url(version, transition):
    return reverse(
        "admin:decisions_rule_transition", args=[version.rule_id, version.number, transition]
    )


def test_an_analyst_cannot_publish_in_the_admin_nor_through_the_api(client):
    draft = rule_with_version(status="draft")
    analyst = person("analyst")
    client.force_login(analyst)

    page = client.get(reverse("admin:decisions_rule_change", args=[draft.rule_id]))
    posted = client.post(transition_url(draft, "publish"))
    api = session_client(analyst).post(
        f"/api/v1/rules/{draft.rule.key}/versions/{draft.number}/publish/"
    )

    assert page.status_code == 200
    assert f'data-testid="publish-{draft.number}"' not in page.content.decode()
    assert 'data-testid="new-draft"' not in page.content.decode()
    assert posted.status_code == 403
    assert api.status_code == 403
    draft.refresh_from_db()
    assert draft.status == RuleVersion.Status.DRAFT


def test_a_rule_editor_publishes_in_the_admin(client):
    draft = rule_with_version(status="draft")
    client.force_login(person("rule editor"))

    page = client.get(reverse("admin:decisions_rule_change", args=[draft.rule_id]))
    posted = client.post(transition_url(draft, "publish"))

    assert f'data-testid="publish-{draft.number}"' in page.content.decode()
    assert posted.status_code == 302
    draft.refresh_from_db()
    assert draft.status == RuleVersion.Status.PUBLISHED


def test_admin_pages_need_the_matching_permission(client):
    draft = rule_with_version(status="draft")
    client.force_login(person("campaign manager"))

    assert client.get(reverse("admin:decisions_rule_changelist")).status_code == 403
    assert client.get(reverse("admin:decisions_policy_changelist")).status_code == 403
    assert client.get(reverse("admin:decisions_rule_diff", args=[draft.rule_id])).status_code == 403
    client.force_login(person("analyst"))
    new_draft = reverse("admin:decisions_rule_new_version", args=[draft.rule_id])
    backtest = reverse("admin:decisions_rule_backtest", args=[draft.rule_id, draft.number])
    assert client.get(new_draft).status_code == 403
    assert client.get(backtest).status_code == 403
    assert client.get(reverse("admin:decisions_rule_diff", args=[draft.rule_id])).status_code == 200
    assert client.get(reverse("admin:decisions_namedlist_add")).status_code == 403


def test_the_decision_admin_masks_action_numbers_without_pii_read(client):
    rule_with_version(
        condition="true",
        actions=[{"type": "sms", "template": approved_template().key, "to": "event.phone"}],
    )
    decision = register_event({"phone": "+447700900123"})
    client.force_login(person("analyst"))

    page = client.get(reverse("admin:decisions_decision_change", args=[decision.pk]))

    assert page.status_code == 200
    assert "+447700900123" not in page.content.decode()
    assert "+44 7•••• ••123" in page.content.decode()
