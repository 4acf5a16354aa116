"""The review queue in Chromium: open the oldest case, claim it and resolve it over HTMX."""

import pytest
from playwright.sync_api import expect

from decisions.tests.factories import register_event, rule_with_version


@pytest.mark.django_db(transaction=True)
def test_a_reviewer_claims_and_declines_a_case_on_its_page(logged_in_page):
    rule_with_version(condition="event.amount > 1000", outcome="review")
    register_event({"amount": 20, "customer_id": "c-9"})
    decision = register_event({"amount": 5000, "customer_id": "c-9"})
    page = logged_in_page

    page.goto("/reviews/")
    expect(page.get_by_test_id("count")).to_have_text("1 open case")
    page.get_by_role("link", name=f"#{decision.review_case.pk}").click()
    expect(page.get_by_test_id("trace")).to_contain_text("high-amount")
    expect(page.get_by_test_id("earlier")).to_contain_text("approve")
    page.get_by_test_id("claim").click()
    expect(page.get_by_test_id("claim-state")).to_contain_text("(you)")
    page.get_by_test_id("resolve-decline").check()
    page.get_by_test_id("resolve-note").fill("Second application in minutes; income unverified.")
    page.get_by_test_id("resolve").click()

    expect(page.get_by_test_id("case-resolution")).to_have_text("decline")
    expect(page.get_by_test_id("case-note")).to_contain_text("income unverified")
    page.goto("/reviews/")
    expect(page.get_by_test_id("count")).to_have_text("0 open cases")
