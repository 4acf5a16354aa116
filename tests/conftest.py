"""Fixtures for the cross-app tests: a real Celery worker process, a trained credit model, a
browser signed in as a person in one role, watched for console errors, failed requests, CSP
violations and accessibility problems."""

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.celery_worker import celery_worker
from tests.support.page_checks import PageWatch

__all__ = ["celery_worker"]
PASSWORD = "journey-pass-123"


@pytest.fixture
def role_page(browser: Any, live_server: Any) -> Iterator[Callable[[str], tuple[Any, PageWatch]]]:
    """`page, watch = role_page("analyst")`: a fresh browser signed in through the login form
    as a person in that role only; `watch.check(name)` holds the page to the shared checks."""
    from campaigns.tests.factories import role_member

    contexts = []

    def sign_in(role: str) -> tuple[Any, PageWatch]:
        user = role_member(role.replace(" ", "-"), role)
        user.set_password(PASSWORD)
        user.save(update_fields=["password"])
        context = browser.new_context(base_url=live_server.url, accept_downloads=True)
        contexts.append(context)
        page = context.new_page()
        watch = PageWatch(page)
        page.goto("/login/")
        page.fill("input[name=username]", user.username)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server.url}/")
        return page, watch

    yield sign_in
    for context in contexts:
        context.close()
