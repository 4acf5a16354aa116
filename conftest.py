"""Fixtures every test may use: API clients with real keys, a logged-in browser session."""

import os
from collections.abc import Iterator

import pytest

# Playwright's sync API runs an event loop in the test thread; the ORM calls our browser tests
# make around it are still plain synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """PBKDF2's deliberate slowness protects real passwords, not test users."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def static_files_looked_up_on_request(settings):
    """Every test client loads the middleware again, and WhiteNoise would list every static file
    (admin, Swagger UI, ...) each time: 40 ms of CPU per client. Looking a file up when it is
    asked for is what WhiteNoise does under DEBUG; the served files are the same."""
    settings.WHITENOISE_AUTOREFRESH = True


@pytest.fixture
def api_key(db):
    from django.utils import timezone

    from core.models import ApiKey
    from core.services import api_key_create

    key, raw = api_key_create(name="test-client", scopes=["all"])
    # A key in steady use: its last use was just written, so requests in the test (and their
    # pinned query counts) do not pay for the once-a-minute last-use update.
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now())
    return key, raw


@pytest.fixture
def api_client(api_key):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {api_key[1]}")
    return client


@pytest.fixture
def credit_model(db):
    """The shipped credit-default model, trained on German Credit and promoted."""
    from risk.tests.factories import credit_model_register

    return credit_model_register()


@pytest.fixture
def staff_user(django_user_model):
    return django_user_model.objects.create_superuser(username="staff", password="staff-pass-123")


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


@pytest.fixture
def logged_in_page(browser, live_server, staff_user):
    """A browser page in a staff session, opened on the dashboard.

    The session is made server-side and handed to the browser as its cookie: the login form
    itself is one journey of its own (tests/test_ui_shell.py), not three page loads per test.
    """
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(staff_user)
    context = browser.new_context(base_url=live_server.url)
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )
    page = context.new_page()
    page.goto("/")
    yield page
    context.close()
