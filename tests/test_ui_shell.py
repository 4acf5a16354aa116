"""The web shell in a real browser: log in, navigate, see htmx load panels, log out."""

import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_sends_anonymous_visitors_to_the_login_page(browser, live_server):
    page = browser.new_page(base_url=live_server.url)
    page.goto("/")

    assert page.url == f"{live_server.url}/login/?next=/"
    assert page.locator("h1").inner_text() == "Log in"
    page.close()


def test_it_shows_an_inline_error_for_a_wrong_password(browser, live_server, staff_user):
    page = browser.new_page(base_url=live_server.url)
    page.goto("/login/")
    page.fill("input[name=username]", "staff")
    page.fill("input[name=password]", "wrong-password")
    page.click("button[type=submit]")

    assert "did not match" in page.locator("[role=alert]").inner_text()
    page.close()


def test_it_logs_in_and_shows_the_navigation(browser, live_server, staff_user):
    page = browser.new_page(base_url=live_server.url)
    page.goto("/login/")
    page.fill("input[name=username]", "staff")
    page.fill("input[name=password]", "staff-pass-123")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    nav = page.locator("nav[aria-label=Main]")

    for label in ("Dashboard", "Predict", "Records", "Decisions", "Campaigns", "Admin", "API"):
        assert nav.get_by_role("link", name=label, exact=True).count() == 1
    assert page.locator("h1").inner_text() == "Dashboard"
    assert page.evaluate("typeof htmx") == "object"
    assert page.evaluate("htmx.version").startswith("2.")
    page.close()


def test_it_logs_out(logged_in_page, live_server):
    page = logged_in_page
    page.get_by_test_id("logout").click()
    page.wait_for_url(f"{live_server.url}/login/")

    page.goto("/")
    assert "/login/" in page.url


def test_it_opens_the_admin_for_staff(logged_in_page):
    page = logged_in_page
    page.get_by_role("link", name="Admin", exact=True).click()

    assert "Site administration" in page.content()
