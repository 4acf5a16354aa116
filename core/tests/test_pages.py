"""The page plumbing: full page or partial, paging, and the one not-found answer of a page."""

import pytest
from django.http import HttpResponse
from django.test import RequestFactory
from django_htmx.middleware import HtmxMiddleware

from core.errors import NotFound
from core.models import AuditEntry
from core.pages import HtmxHttpRequest, not_found_as_404, paginate, render_page

pytestmark = pytest.mark.django_db


HTMX = {"HX-Request": "true"}


def _request(path: str = "/", headers: dict[str, str] | None = None) -> HtmxHttpRequest:
    request = RequestFactory().get(path, headers=headers)
    HtmxMiddleware(lambda request: HttpResponse())(request)
    return request  # type: ignore[return-value]


def test_it_renders_only_the_partial_for_an_htmx_swap():
    response = render_page(_request(headers=HTMX), "404.html", {}, partial="message", status=404)

    assert response.status_code == 200  # htmx 2 swaps only 2xx answers
    assert "<html" not in response.content.decode()
    assert "There is nothing at this address." in response.content.decode()
    assert response["Vary"] == "HX-Request"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {**HTMX, "HX-Boosted": "true"},
        {**HTMX, "HX-History-Restore-Request": "true"},
    ],
)
def test_it_renders_the_whole_page_for_a_visit_a_boosted_link_and_a_history_restore(headers):
    response = render_page(_request(headers=headers), "404.html", {}, partial="message", status=404)

    assert response.status_code == 404
    assert "<html" in response.content.decode()


def test_it_pages_and_keeps_the_other_parameters():
    items = AuditEntry.objects.order_by("pk")

    context = paginate(_request("/?action=x&page=3"), items)

    assert context["page"].number == 1  # the nearest page there is
    assert context["query"] == "action=x"


def test_it_answers_a_missing_object_with_the_shared_404_page():
    @not_found_as_404
    def page(request: HtmxHttpRequest, thing_id: int) -> HttpResponse:
        raise NotFound(f"No thing {thing_id}.")

    full = page(_request(), thing_id=7)
    partial = page(_request(headers=HTMX), thing_id=7)

    assert full.status_code == 404
    assert "<h1>Not found</h1>" in full.content.decode()
    assert "No thing 7." in full.content.decode()
    assert partial.status_code == 404
    assert "<html" not in partial.content.decode()
    assert "No thing 7." in partial.content.decode()
