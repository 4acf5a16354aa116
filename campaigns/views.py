"""HTMX pages: campaign list, detail with live stats, preview, and the operator buttons."""

from collections.abc import Callable
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_POST

from campaigns import selectors, services
from campaigns.models import Campaign
from core.errors import DomainError, NotFound

OPERATIONS: dict[str, Callable[..., Campaign]] = {
    "launch": services.campaign_launch,
    "pause": services.campaign_pause,
    "resume": services.campaign_resume,
    "cancel": services.campaign_cancel,
}
LIVE_STATUSES = (Campaign.Status.RUNNING, Campaign.Status.SCHEDULED, Campaign.Status.PAUSED)


def _campaign(campaign_id: int) -> Campaign:
    try:
        return selectors.campaign_get(campaign_id=campaign_id)
    except NotFound as error:
        raise Http404(error.detail) from None


def _page(request: HttpRequest, partial: str, context: dict[str, Any]) -> HttpResponse:
    template = "campaigns/detail.html"
    if getattr(request, "htmx", False):
        template += f"#{partial}"
    return render(request, template, {**context, "nav": "campaigns"})


@login_required
def campaign_list_page(request: HttpRequest) -> HttpResponse:
    campaigns = selectors.campaign_list()[:200]
    return render(request, "campaigns/list.html", {"campaigns": campaigns, "nav": "campaigns"})


@login_required
def campaign_detail_page(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = _campaign(campaign_id)
    stats = selectors.campaign_stats(campaign=campaign)
    return _page(request, "status", {"campaign": campaign, "stats": stats, "live": LIVE_STATUSES})


@login_required
def campaign_stats_part(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = _campaign(campaign_id)
    stats = selectors.campaign_stats(campaign=campaign)
    return render(
        request,
        "campaigns/detail.html#status",
        {"campaign": campaign, "stats": stats, "live": LIVE_STATUSES},
    )


@login_required
def campaign_preview_part(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = _campaign(campaign_id)
    try:
        preview, error = selectors.campaign_preview(campaign=campaign), None
    except DomainError as failure:
        preview, error = None, failure
    return render(request, "campaigns/detail.html#preview", {"preview": preview, "error": error})


@login_required
@require_POST
def campaign_operate(request: HttpRequest, campaign_id: int, operation: str) -> HttpResponse:
    operate = OPERATIONS.get(operation)
    if operate is None:
        raise Http404(f"No operation {operation}.")
    campaign = _campaign(campaign_id)
    error = None
    try:
        campaign = operate(campaign=campaign, actor=request.user)
    except DomainError as failure:
        error = failure
    stats = selectors.campaign_stats(campaign=campaign)
    return render(
        request,
        "campaigns/detail.html#status",
        {"campaign": campaign, "stats": stats, "live": LIVE_STATUSES, "error": error},
    )


@login_required
def dashboard_panel(request: HttpRequest) -> HttpResponse:
    return render(request, "campaigns/panel.html", {"overview": selectors.campaigns_overview()})
