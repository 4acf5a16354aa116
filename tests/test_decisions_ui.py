"""Rule editing in the admin, in Chromium (an analyst filtering, opening and replaying a
decision is part of tests/test_journeys.py)."""

import pytest
from playwright.sync_api import expect

from decisions import services


@pytest.mark.django_db(transaction=True)
def test_it_lets_staff_draft_fix_and_publish_a_rule_in_the_admin(logged_in_page):
    rule = services.rule_create(key="young", name="Young", event_type="loan_application")
    page = logged_in_page

    page.goto(f"/admin/decisions/rule/{rule.pk}/change/")
    page.get_by_test_id("new-draft").click()
    page.fill("textarea[name=condition]", "event.age <")
    page.fill("input[name=outcome]", "decline")
    page.fill("input[name=priority]", "5")
    page.click("input[name=_save]")
    expect(page.get_by_test_id("errors-condition")).to_contain_text("Line 1, column")

    page.fill("textarea[name=condition]", "event.age < 18")
    page.click("input[name=_save]")
    expect(page.locator(".messagelist")).to_contain_text("Draft version 1 created")
    page.get_by_test_id("publish-1").click()

    expect(page.locator(".messagelist")).to_contain_text("version 1 is now published")
    expect(page.get_by_test_id("retire-1")).to_be_visible()
    expect(page.locator(".audit-trail")).to_contain_text("rule_version.publish")
