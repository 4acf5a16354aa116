"""The web shell in a real browser: log in, navigate, see htmx load panels, log out."""

import pytest

from tests.support.page_checks import PageWatch

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

    labels = (
        "Overview",
        "Predict",
        "Records",
        "Decisions",
        "Campaigns",
        "Contacts",
        "Admin",
        "API",
    )
    for label in labels:
        assert nav.get_by_role("link", name=label, exact=True).count() == 1
    assert page.locator("h1").inner_text() == "Overview"
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


def test_the_page_checks_catch_csp_violations_and_serious_accessibility_problems(
    browser, live_server
):
    page = browser.new_page(base_url=live_server.url)
    watch = PageWatch(page)
    page.goto("/login/")
    assert watch.accessibility_violations() == []

    # An inline script (refused by the CSP) and an image without a text alternative.
    page.evaluate(
        """() => {
          const script = document.createElement("script");
          script.textContent = "window.ran = true";
          document.body.append(script);
          const image = document.createElement("img");
          image.src = "/static/img/favicon.svg";
          document.body.append(image);
        }"""
    )

    assert page.evaluate("window.ran") is None
    assert any("CSP violation: script-src" in problem for problem in watch.problems)
    assert [v["id"] for v in watch.accessibility_violations()] == ["image-alt"]
    page.close()
