"""What every HTMX page shares: the typed request, full page or partial, paging, and not-found."""

from collections.abc import Callable
from functools import wraps
from typing import Any, Concatenate

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_http_methods
from django_htmx.middleware import HtmxDetails

from core.errors import NotFound

PAGE_SIZE = 25
NOT_FOUND_TEMPLATE = "404.html"


class HtmxHttpRequest(HttpRequest):
    """A request that went through django-htmx's middleware (every page view takes one)."""

    htmx: HtmxDetails


def wants_partial(request: HtmxHttpRequest) -> bool:
    """An htmx swap of one region; boosted links and history restores want the whole page."""
    return bool(request.htmx) and not (request.htmx.boosted or request.htmx.history_restore_request)


def render_page(
    request: HtmxHttpRequest,
    template: str,
    context: dict[str, Any],
    *,
    partial: str | None = None,
    status: int = 200,
) -> HttpResponse:
    """The page, or only its `{% partialdef partial %}` region for an htmx swap.

    `status` is the full page's; a partial answers 200, because htmx 2 swaps only 2xx answers
    and an inline error is the answer there.
    """
    if partial and wants_partial(request):
        response = render(request, f"{template}#{partial}", context)
    else:
        response = render(request, template, context, status=status)
    # The same URL answers two bodies; caches (and the browser's back button) must tell them apart.
    patch_vary_headers(response, ("HX-Request",))
    return response


def paginate(request: HttpRequest, items: QuerySet[Any]) -> dict[str, Any]:
    """`page` (the `?page=` asked for, or the nearest one) and `query`, the other parameters."""
    page = Paginator(items, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return {"page": page, "query": query.urlencode()}


def render_not_found(request: HtmxHttpRequest, error: NotFound) -> HttpResponse:
    """The one answer of a page whose object is gone: the shared 404 page (or its message)."""
    template = f"{NOT_FOUND_TEMPLATE}#message" if wants_partial(request) else NOT_FOUND_TEMPLATE
    return render(request, template, {"error": error}, status=404)


# HttpResponseBase: a page may stream (a CSV export), which is no HttpResponse.
type PageView[**P] = Callable[Concatenate[HtmxHttpRequest, P], HttpResponseBase]


def not_found_as_404[**P](view: PageView[P]) -> PageView[P]:
    """Let a page view raise a service's `NotFound`: it becomes the shared 404 page."""

    @wraps(view)
    def page(request: HtmxHttpRequest, *args: P.args, **kwargs: P.kwargs) -> HttpResponseBase:
        try:
            return view(request, *args, **kwargs)
        except NotFound as error:
            return render_not_found(request, error)

    return page


def page_view[**P](*methods: str) -> Callable[[PageView[P]], PageView[P]]:
    """Every page and HTMX view: a logged-in user, only these methods, not-found as 404."""

    def decorate(view: PageView[P]) -> PageView[P]:
        page = login_required(require_http_methods(list(methods))(not_found_as_404(view)))
        page.http_methods = methods  # type: ignore[attr-defined]  # read by the security matrix
        return page

    return decorate
