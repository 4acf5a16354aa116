"""The rule editor's journey in Debian's Chromium: the rules of an event type with their versions
and hits, then a backtest of a draft, followed while the worker runs it, down to an example.

Every page is held to the shared checks (tests/support/page_checks.py) and must fit a phone.
"""

import re

import pytest
from playwright.sync_api import expect

from decisions import services as decision_services
from decisions.models import Rule
from tests.support.page_checks import assert_fits_phone_width
from tests.test_journeys import _decisions, _nav

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_rule_editor_reads_the_rules_and_backtests_a_draft(role_page, settings, monkeypatch):
    # Given 30 decisions of a published rule that reviews amounts over 1000 (2 of them), and a
    # draft that would decline everything over 20 (8 of them)
    events = _decisions()
    rule = Rule.objects.get(key="large")
    draft = decision_services.rule_version_create(
        rule=rule, condition="event.amount > 20", outcome="decline", priority=1
    )
    # Every backtest goes to the worker; the journey is the worker, run in-process below.
    settings.DECISIONS_BACKTEST_INLINE_MAX_EVENTS = 0
    queued: list[int] = []
    monkeypatch.setattr(
        "decisions.enqueue.backtest_run_enqueue", lambda *, backtest_id: queued.append(backtest_id)
    )
    page, watch = role_page("rule editor")

    # The rules of loan applications: the published version, the draft, and the hits chart
    _nav(page, "Rules").click()
    watch.check("rules-index")
    page.get_by_role("link", name="loan_application").click()
    large = page.locator("[data-testid=rule][data-rule=large]")
    expect(large.get_by_test_id("version")).to_have_count(2)
    expect(large.locator("[data-testid=version][data-status=published]")).to_contain_text(
        "event.amount > 1000"
    )
    expect(large.locator("[data-testid=version][data-status=draft]")).to_contain_text("decline")
    expect(large.get_by_test_id("rule-hits")).to_have_text("2")
    expect(large.locator("[data-testid=hits-chart] svg rect")).not_to_have_count(0)
    watch.check("rules")
    assert_fits_phone_width(page)

    # A backtest of the draft: a reversed window is an inline error, then it runs
    large.get_by_role("link", name=f"Backtest v{draft.number}").click()
    expect(page.locator(f"input[name=versions][value='{draft.pk}']")).to_be_checked()
    window_start = page.input_value("#id_window_start")
    window_end = page.input_value("#id_window_end")
    page.fill("#id_window_start", window_end)
    page.fill("#id_window_end", window_start)
    page.get_by_test_id("backtest-run").click()
    expect(page.get_by_test_id("error-window_end")).to_contain_text("ends before it starts")
    watch.check("backtest-new")
    assert_fits_phone_width(page)
    page.fill("#id_window_start", window_start)
    page.fill("#id_window_end", window_end)
    page.get_by_test_id("backtest-run").click()

    # Queued for the worker: the page polls until the worker is done
    expect(page).to_have_url(re.compile(r"/rules/backtests/\d+/$"))
    status = page.get_by_test_id("backtest-status")
    expect(status).to_have_attribute("data-status", "queued")
    assert len(queued) == 1
    decision_services.backtest_run(backtest_id=queued[0])
    expect(status).to_have_attribute("data-status", "completed")
    expect(page.get_by_test_id("changed")).to_have_text("8")
    watch.check("backtest")
    assert_fits_phone_width(page)

    # An example: a decision that reviewed 2000, which the draft would decline
    review_to_decline = page.get_by_test_id("transitions").locator("tr", has_text="review")
    review_to_decline.get_by_test_id("example").first.click()
    expect(page.get_by_test_id("outcome")).to_have_text("review")
    assert page.url.endswith(f"/decisions/{events[1].pk}/") or page.url.endswith(
        f"/decisions/{events[3].pk}/"
    )
    watch.check("backtest-example")
    assert_fits_phone_width(page)

    # The decisions it came from, filtered by the rule, fit a phone too
    _nav(page, "Decisions").click()
    page.get_by_test_id("filter-rule").select_option("large")
    expect(page.get_by_test_id("count")).to_have_text("2 decisions")
    assert_fits_phone_width(page)
