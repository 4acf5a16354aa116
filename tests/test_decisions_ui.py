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


@pytest.mark.django_db(transaction=True)
def test_four_eyes_the_author_requests_and_another_person_approves_in_the_admin(
    logged_in_page, browser, live_server
):
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.test import Client

    from campaigns.tests.factories import role_member

    services.policy_save(
        event_type="loan_application",
        strategy="first_match",
        default_outcome="approve",
        requires_approval=True,
    )
    rule = services.rule_create(key="young", name="Young", event_type="loan_application")
    author = User.objects.get(username="staff")
    services.rule_version_create(
        rule=rule, condition="event.age < 18", outcome="decline", priority=5, actor=author
    )
    rule_page = f"/admin/decisions/rule/{rule.pk}/change/"
    page = logged_in_page
    page.goto(rule_page)
    page.get_by_test_id("request-approval-1").click()
    expect(page.locator(".messagelist")).to_contain_text("Approval of version 1 requested")
    expect(page.get_by_test_id("approve-1")).to_have_count(0)  # never one's own version

    approver = role_member("approver", "rule approver")
    User.objects.filter(pk=approver.pk).update(is_staff=True)
    session = Client()
    session.force_login(approver)
    context = browser.new_context(base_url=live_server.url)
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": session.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )
    other = context.new_page()
    other.goto(rule_page)
    expect(other.get_by_test_id("publish-1")).to_have_count(0)  # an approver is no editor
    other.get_by_test_id("approve-1").click()
    expect(other.locator(".messagelist")).to_contain_text("approved")
    context.close()

    page.goto(rule_page)
    page.get_by_test_id("publish-1").click()
    expect(page.locator(".messagelist")).to_contain_text("version 1 is now published")
