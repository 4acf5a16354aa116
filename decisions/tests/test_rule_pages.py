"""The rule editor's pages through the Django test client: rules per event type with their
versions and hits, and backtests of drafts (the browser journey: test_journey_rule_editor.py)."""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from campaigns.tests.factories import role_member
from decisions import services
from decisions.models import Backtest, Decision
from decisions.tests.factories import register_event, rule_with_version

pytestmark = pytest.mark.django_db

LOCAL = "%Y-%m-%dT%H:%M"


@pytest.fixture
def editor_client():
    client = Client()
    client.force_login(role_member("rule-editor", "rule editor"))
    return client


def _local(moment):
    return timezone.localtime(moment).strftime(LOCAL)


def _window(*, days_before=1, days_after=1):
    now = timezone.now()
    return {
        "window_start": _local(now - timedelta(days=days_before)),
        "window_end": _local(now + timedelta(days=days_after)),
    }


def test_it_shows_each_rule_with_its_versions_and_hits_in_a_fixed_number_of_queries(
    editor_client, django_assert_max_num_queries
):
    # Given a published rule that decided two events, with a canary and a draft beside it,
    # a rule with only a shadow version, and a rule of another event type
    rule_with_version(key="large", condition="event.amount > 1000", outcome="review", priority=5)
    canary = rule_with_version(
        key="large", condition="event.amount > 900", outcome="review", status="draft"
    )
    services.rule_version_canary(version=canary, percent=25, key="customer_id")
    rule_with_version(
        key="large", condition="event.amount > 5000", outcome="decline", status="draft"
    )
    rule_with_version(key="watch", condition="event.amount < 0", outcome="decline", status="shadow")
    rule_with_version(key="elsewhere", event_type="signup", condition="true", outcome="review")
    for amount in (2000, 3000, 5):
        register_event({"amount": amount, "customer_id": "c-1"})

    # session, user, permissions (user, groups), hits and their versions, rules and their
    # versions, the policy, recent backtests: as many with two rules as with two hundred
    with django_assert_max_num_queries(10):
        response = editor_client.get(reverse("rules:page", args=["loan_application"]))

    content = response.content.decode()
    assert response.status_code == 200
    assert re.findall(r'data-rule="([\w-]+)"', content) == ["large", "watch"]
    statuses = re.findall(r'data-testid="version" data-status="(\w+)"', content)
    assert statuses == ["published", "canary", "draft", "shadow"]
    assert 'data-testid="canary-percent">25 %' in content
    assert "event.amount &gt; 5000" in content
    hits = re.findall(r'data-testid="rule-hits">(\d+)<', content)
    decided = Decision.objects.filter(matched_version__rule__key="large").count()
    assert decided == 2  # the canary takes c-1 or not: either way the rule decided both
    assert hits == ["2", "0"]
    assert content.count('data-testid="hits-chart"') == 2
    assert "elsewhere" not in content


def test_it_counts_the_hits_of_a_retired_version_under_its_number(editor_client):
    # Given v1 decided one event, then v2 replaced it and decided two
    rule_with_version(key="large", condition="event.amount > 1000")
    register_event({"amount": 2000})
    rule_with_version(key="large", condition="event.amount > 100")
    register_event({"amount": 200})
    register_event({"amount": 3000})

    content = editor_client.get(reverse("rules:page", args=["loan_application"])).content.decode()

    assert re.findall(r'data-testid="version" data-status="(\w+)"', content) == ["published"]
    assert 'data-testid="rule-hits">3<' in content
    legend = re.findall(r"</svg>(v\d+)</span>", content)
    assert legend == ["v1", "v2"]


def test_it_redraws_only_the_rules_for_another_range(editor_client):
    rule_with_version(key="large")
    register_event({"amount": 2000})

    partial = editor_client.get(
        reverse("rules:page", args=["loan_application"]), {"range": "7d"}, HTTP_HX_REQUEST="true"
    )

    content = partial.content.decode()
    assert "<html" not in content
    assert 'data-testid="policy"' not in content
    assert 'data-range="7d"' in content
    assert "last 7 days" in content


def test_it_says_how_the_event_type_is_decided(editor_client):
    services.policy_save(
        event_type="loan_application",
        strategy="collect",
        default_outcome="review",
        outcome_precedence=["decline", "review", "approve"],
    )

    content = editor_client.get(reverse("rules:page", args=["loan_application"])).content.decode()

    policy = re.search(r'data-testid="policy">(.*?)</p>', content, re.S).group(1)
    assert "Collect, highest precedence wins (decline, then review, then approve)" in policy
    assert '<span class="badge review">review</span>' in policy


def test_it_lists_event_types_and_links_the_rules_page(
    editor_client, django_assert_max_num_queries
):
    rule_with_version(key="large")
    rule_with_version(key="welcome", event_type="signup", condition="true", outcome="approve")

    with django_assert_max_num_queries(6):  # session, user, permissions x2, rules, policies
        content = editor_client.get(reverse("rules:index")).content.decode()

    assert reverse("rules:page", args=["loan_application"]) in content
    assert reverse("rules:page", args=["signup"]) in content


def test_it_links_admin_for_editing_only_for_staff(editor_client, staff_client):
    rule_with_version(key="large")
    url = reverse("rules:page", args=["loan_application"])

    as_editor = editor_client.get(url).content.decode()
    as_staff = staff_client.get(url).content.decode()

    assert 'data-testid="edit-in-admin"' not in as_editor
    assert 'data-testid="edit-in-admin"' in as_staff


def test_it_refuses_the_rules_page_to_a_role_without_rules_read(client):
    client.force_login(role_member("campaign-manager", "campaign manager"))

    assert client.get(reverse("rules:page", args=["loan_application"])).status_code == 403
    assert client.get(reverse("rules:index")).status_code == 403


def test_it_refuses_backtests_to_a_role_that_only_reads_rules(client):
    client.force_login(role_member("analyst", "analyst"))
    rule_with_version(key="large")

    page = client.get(reverse("rules:page", args=["loan_application"])).content.decode()
    new = client.get(reverse("rules:backtest_new"))

    assert "Backtest drafts" not in page
    assert new.status_code == 403


def test_it_runs_a_small_backtest_at_once_and_shows_what_would_change(
    editor_client, django_assert_max_num_queries
):
    # Given a published rule that reviewed one of three events, and a draft that would decline
    # both large ones
    rule_with_version(key="large", condition="event.amount > 2500", outcome="review")
    draft = rule_with_version(
        key="large", condition="event.amount > 1000", outcome="decline", status="draft"
    )
    decisions = [register_event({"amount": amount}) for amount in (2000, 3000, 5)]

    response = editor_client.post(
        reverse("rules:backtest_new"), {"versions": [draft.pk], **_window()}, HTTP_HX_REQUEST="true"
    )

    backtest = Backtest.objects.get()
    assert response.headers["HX-Redirect"] == reverse("rules:backtest", args=[backtest.pk])
    assert backtest.status == Backtest.Status.COMPLETED
    assert backtest.candidates[0]["version"] == draft.number
    # session, user, permissions (user, groups), the backtest, its examples' decisions
    with django_assert_max_num_queries(6):
        response = editor_client.get(reverse("rules:backtest", args=[backtest.pk]))
    page = response.content.decode()
    assert 'data-testid="changed">2<' in page
    assert 'hx-trigger="every 1s"' not in page
    examples = re.findall(r'href="/decisions/(\d+)/" data-testid="example"', page)
    assert sorted(int(pk) for pk in examples) == sorted([decisions[0].pk, decisions[1].pk])


def test_a_big_backtest_goes_to_the_worker_and_the_page_polls_until_it_is_done(
    editor_client, settings, django_capture_on_commit_callbacks, monkeypatch
):
    settings.DECISIONS_BACKTEST_INLINE_MAX_EVENTS = 0
    sent: list[int] = []
    monkeypatch.setattr(
        "decisions.enqueue.backtest_run_enqueue", lambda *, backtest_id: sent.append(backtest_id)
    )
    draft = rule_with_version(key="large", condition="event.amount > 1", status="draft")
    register_event({"amount": 2000})

    response = editor_client.post(
        reverse("rules:backtest_new"), {"versions": [draft.pk], **_window()}
    )

    backtest = Backtest.objects.get()
    assert response.status_code == 302
    assert sent == [backtest.pk]
    url = reverse("rules:backtest", args=[backtest.pk])
    queued = editor_client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert 'data-status="queued"' in queued
    assert f'hx-get="{url}" hx-trigger="every 1s"' in queued
    assert "<html" not in queued
    services.backtest_run(backtest_id=backtest.pk)
    done = editor_client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert 'data-status="completed"' in done
    assert "hx-trigger" not in done
    assert 'data-testid="changed">1<' in done


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        ({"versions": []}, "versions", "Choose at least one draft version."),
        ({"days_before": -2}, "window_end", "The window ends before it starts"),
        ({"window_start": "yesterday"}, "window_start", "Enter a valid date/time."),
        ({"days_before": 200}, "window_start", "At most 92 days before window_end."),
    ],
)
def test_it_answers_bad_input_inline_and_starts_nothing(editor_client, form, field, message):
    draft = rule_with_version(key="large", status="draft")
    data = {"versions": [draft.pk], **_window(days_before=form.pop("days_before", 1))}
    data.update(form)

    partial = editor_client.post(reverse("rules:backtest_new"), data, HTTP_HX_REQUEST="true")
    full = editor_client.post(reverse("rules:backtest_new"), data)

    assert partial.status_code == 200  # htmx swaps 2xx only
    assert full.status_code == 400
    content = partial.content.decode()
    assert "<html" not in content
    assert f'data-testid="error-{field}">{message}' in content
    assert Backtest.objects.count() == 0


def test_it_refuses_a_version_that_is_no_draft(editor_client):
    published = rule_with_version(key="large")

    response = editor_client.post(
        reverse("rules:backtest_new"), {"versions": [published.pk], **_window()}
    )

    assert response.status_code == 400
    assert "is not a draft" in response.content.decode()
    assert Backtest.objects.count() == 0


def test_it_names_the_backtest_still_running_for_the_same_rule(
    editor_client, settings, monkeypatch
):
    settings.DECISIONS_BACKTEST_INLINE_MAX_EVENTS = 0
    monkeypatch.setattr("decisions.enqueue.backtest_run_enqueue", lambda *, backtest_id: None)
    draft = rule_with_version(key="large", status="draft")
    register_event({"amount": 2000})
    data = {"versions": [draft.pk], **_window()}
    editor_client.post(reverse("rules:backtest_new"), data)
    running = Backtest.objects.get()

    response = editor_client.post(reverse("rules:backtest_new"), data, HTTP_HX_REQUEST="true")

    content = response.content.decode()
    assert "one backtest per rule runs at a time" in content
    assert reverse("rules:backtest", args=[running.pk]) in content
    assert Backtest.objects.count() == 1


def test_it_offers_the_event_types_drafts_with_the_chosen_one_checked(editor_client):
    other = rule_with_version(key="large", status="draft")
    chosen = rule_with_version(key="large", condition="event.amount > 5", status="draft")
    rule_with_version(key="welcome", event_type="signup", condition="true", status="draft")

    content = editor_client.get(
        reverse("rules:backtest_new"), {"event_type": "loan_application", "version": chosen.pk}
    ).content.decode()

    drafts = re.findall(r'name="versions" value="(\d+)"( checked)?', content)
    assert [(int(pk), bool(checked)) for pk, checked in drafts] == [
        (other.pk, False),
        (chosen.pk, True),
    ]


def test_its_default_window_holds_the_events_of_this_very_minute(editor_client):
    draft = rule_with_version(key="large", condition="event.amount > 1", status="draft")
    register_event({"amount": 2000})

    form = editor_client.get(reverse("rules:backtest_new")).content.decode()
    window = dict(re.findall(r'name="(window_\w+)" value="([^"]+)"', form))
    editor_client.post(reverse("rules:backtest_new"), {"versions": [draft.pk], **window})

    assert Backtest.objects.get().results["evaluated"] == 1


def test_it_shows_why_a_backtest_failed(editor_client):
    now = timezone.now()
    backtest = Backtest.objects.create(
        candidates=[{"rule_key": "large", "version": 2, "version_id": 0}],
        event_types=["loan_application"],
        window_start=now - timedelta(days=1),
        window_end=now,
        status=Backtest.Status.FAILED,
        error="Stopped after the time limit of 300 s; choose a shorter window.",
    )

    content = editor_client.get(reverse("rules:backtest", args=[backtest.pk])).content.decode()

    assert 'data-status="failed"' in content
    assert "The backtest failed: Stopped after the time limit of 300 s" in content
    assert "hx-trigger" not in content


def test_it_answers_404_for_a_backtest_that_does_not_exist(editor_client):
    assert editor_client.get(reverse("rules:backtest", args=[999_999])).status_code == 404
