"""Staff flows in the Django admin, through the test client."""

import pytest
from django.urls import reverse

from core.models import AuditEntry
from decisions.models import NamedList, Policy, Rule, RuleVersion
from decisions.tests.factories import rule_with_version

pytestmark = pytest.mark.django_db


def test_it_creates_a_rule_through_the_service_and_audits_it(staff_client):
    response = staff_client.post(
        reverse("admin:decisions_rule_add"),
        {
            "key": "big-loan",
            "name": "Big loan",
            "event_type": "loan_application",
            "description": "",
            "versions-TOTAL_FORMS": "0",
            "versions-INITIAL_FORMS": "0",
        },
    )

    assert response.status_code == 302
    rule = Rule.objects.get(key="big-loan")
    assert AuditEntry.objects.filter(action="rule.create", target_id="big-loan").exists()
    assert rule.name == "Big loan"


def test_it_shows_a_cel_error_inline_and_creates_nothing(staff_client):
    rule = rule_with_version(status="draft").rule
    url = reverse("admin:decisions_rule_new_version", args=[rule.pk])

    response = staff_client.post(
        url, {"condition": "event.amount >", "outcome": "review", "priority": "5", "actions": "[]"}
    )

    assert response.status_code == 200
    assert "Line 1, column 15" in response.content.decode()
    assert 'data-testid="errors-condition"' in response.content.decode()
    assert rule.versions.count() == 1


def test_it_shows_an_action_error_inline(staff_client):
    rule = rule_with_version(status="draft").rule
    url = reverse("admin:decisions_rule_new_version", args=[rule.pk])

    response = staff_client.post(
        url,
        {
            "condition": "true",
            "outcome": "review",
            "priority": "5",
            "actions": '[{"type": "fax"}]',
        },
    )

    assert response.status_code == 200
    assert "One of: sms" in response.content.decode()
    assert rule.versions.count() == 1


def test_it_creates_a_draft_and_walks_it_through_its_lifecycle(staff_client):
    rule = rule_with_version(condition="event.amount > 1").rule
    new_url = reverse("admin:decisions_rule_new_version", args=[rule.pk])
    form = staff_client.get(new_url)
    assert "event.amount &gt; 1" in form.content.decode()  # prefilled from the latest version

    created = staff_client.post(
        new_url,
        {"condition": "event.amount > 2", "outcome": "review", "priority": "5", "actions": "[]"},
    )
    assert created.status_code == 302

    def transition(number, name):
        url = reverse("admin:decisions_rule_transition", args=[rule.pk, number, name])
        return staff_client.post(url, follow=True)

    transition(2, "shadow")
    assert RuleVersion.objects.get(rule=rule, number=2).status == "shadow"
    transition(2, "publish")
    assert RuleVersion.objects.get(rule=rule, number=2).status == "published"
    assert RuleVersion.objects.get(rule=rule, number=1).status == "retired"
    refused = transition(1, "publish")
    assert "retired" in refused.content.decode()
    assert RuleVersion.objects.get(rule=rule, number=1).status == "retired"
    transition(1, "rollback")
    restored = RuleVersion.objects.get(rule=rule, number=3)
    assert (restored.status, restored.condition) == ("published", "event.amount > 1")


def test_it_shows_version_history_buttons_and_audit_on_the_rule_page(staff_client):
    version = rule_with_version()

    page = staff_client.get(reverse("admin:decisions_rule_change", args=[version.rule.pk]))

    content = page.content.decode()
    assert page.status_code == 200
    assert 'data-testid="retire-1"' in content
    assert 'data-testid="backtest-1"' in content
    assert "rule_version.publish" in content
    assert "New draft version" in content


def test_it_diffs_any_two_versions(staff_client):
    rule = rule_with_version(condition="event.amount > 1").rule
    rule_with_version(condition="event.amount > 99", outcome="decline")

    page = staff_client.get(
        reverse("admin:decisions_rule_diff", args=[rule.pk]), {"a": "1", "b": "2"}
    )

    content = page.content.decode()
    assert "version 1 (retired)" in content
    assert "version 2 (published)" in content
    assert "diff_chg" in content
    assert "outcome:" in content.replace("&nbsp;", " ")


def test_it_saves_named_lists_through_the_service_with_line_numbered_errors(staff_client):
    add_url = reverse("admin:decisions_namedlist_add")

    bad = staff_client.post(
        add_url, {"name": "vip_ids", "value_type": "integer", "values": "1\nfoo", "description": ""}
    )
    good = staff_client.post(
        add_url, {"name": "vip_ids", "value_type": "integer", "values": "1\n2\n", "description": ""}
    )

    assert "Line 2" in bad.content.decode()
    assert good.status_code == 302
    named_list = NamedList.objects.get()
    assert sorted(named_list.items.values_list("value", flat=True)) == ["1", "2"]
    assert AuditEntry.objects.filter(action="named_list.create").count() == 1


def test_it_shows_the_static_check_on_a_policy(staff_client):
    rule_with_version(key="all", condition="true", outcome="review", priority=1)
    rule_with_version(key="later", condition="event.x > 1", outcome="decline", priority=1)
    response = staff_client.post(
        reverse("admin:decisions_policy_add"),
        {
            "event_type": "loan_application",
            "strategy": "first_match",
            "default_outcome": "approve",
            "outcome_precedence": "decline, review, approve",
            "aggregates-TOTAL_FORMS": "0",
            "aggregates-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302
    policy = Policy.objects.get()
    assert policy.outcome_precedence == ["decline", "review", "approve"]

    page = staff_client.get(reverse("admin:decisions_policy_change", args=[policy.pk]))

    content = page.content.decode()
    assert "share priority 1" in content
    assert "can never decide" in content
    assert AuditEntry.objects.filter(action="policy.create").exists()


def test_it_renames_a_rule_through_the_service_keeping_key_and_event_type(staff_client):
    rule = rule_with_version().rule

    response = staff_client.post(
        reverse("admin:decisions_rule_change", args=[rule.pk]),
        {
            "name": "Renamed",
            "description": "Why it exists.",
            "versions-TOTAL_FORMS": "1",
            "versions-INITIAL_FORMS": "1",
            "versions-0-id": str(rule.versions.get().pk),
            "versions-0-rule": str(rule.pk),
        },
    )

    assert response.status_code == 302
    rule.refresh_from_db()
    assert (rule.key, rule.name, rule.event_type) == ("high-amount", "Renamed", "loan_application")
    entry = AuditEntry.objects.get(action="rule.update")
    assert (entry.before["name"], entry.after["name"]) == ("High Amount", "Renamed")


def test_it_backtests_a_draft_from_the_admin_and_shows_results(staff_client):
    from datetime import timedelta

    from django.utils import timezone

    from decisions.tests.factories import register_event

    rule = rule_with_version(condition="event.amount > 1000", outcome="review").rule
    for amount in (10, 500, 5000):
        register_event({"amount": amount})
    rule_with_version(condition="event.amount > 100", outcome="review", status="draft")
    url = reverse("admin:decisions_rule_backtest", args=[rule.pk, 2])
    window = {
        "window_start": (timezone.now() - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S"),
        "window_end": (timezone.now() + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S"),
    }

    assert "Run backtest" in staff_client.get(url).content.decode()
    response = staff_client.post(url, window, follow=True)

    content = response.content.decode()
    assert 'data-status="completed"' in content
    assert "<strong>1</strong> of 3 decisions would change" in content
    assert "hx-trigger" not in content


def test_it_backtests_the_last_30_days_from_the_admin_when_the_window_is_left_empty(
    staff_client,
):
    from datetime import timedelta

    from decisions.models import Backtest

    rule = rule_with_version(condition="event.amount > 1000", outcome="review").rule
    rule_with_version(condition="event.amount > 100", outcome="review", status="draft")
    url = reverse("admin:decisions_rule_backtest", args=[rule.pk, 2])

    response = staff_client.post(url, {"window_start": "", "window_end": ""})

    assert response.status_code == 302
    backtest = Backtest.objects.get()
    assert backtest.window_end - backtest.window_start == timedelta(days=30)


def test_it_polls_a_queued_backtest_over_htmx(staff_client, settings):
    from datetime import timedelta

    from django.utils import timezone

    from decisions import services
    from decisions.tests.factories import register_event

    settings.DECISIONS_BACKTEST_INLINE_MAX_EVENTS = 0
    rule_with_version(status="draft")
    register_event({"amount": 1})
    backtest = services.backtest_create(
        candidates=[{"rule_key": "high-amount", "version": 1}],
        window_start=timezone.now() - timedelta(hours=1),
        window_end=timezone.now() + timedelta(hours=1),
    )

    partial = staff_client.get(
        reverse("admin:decisions_backtest_progress", args=[backtest.pk]), HTTP_HX_REQUEST="true"
    )

    content = partial.content.decode()
    assert 'hx-trigger="every 1s"' in content
    assert "0 of 1 events" in content
    assert "<html" not in content
