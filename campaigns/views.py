"""HTMX pages: campaign list, detail with live stats, preview, and the operator buttons.

Reading needs `campaigns:read`, the buttons `campaigns:launch`; preview samples show masked
without `pii:read` (and their unmasked reads are audited).
"""

from collections.abc import Callable
from typing import Any

from django.http import HttpResponse
from django.shortcuts import render

from campaigns import selectors, services
from campaigns.models import Campaign
from campaigns.pii import preview_read
from core.access import Scope
from core.errors import DomainError, NotFound
from core.pages import HtmxHttpRequest, page_view, render_page
from core.permissions import page_requires, request_may

OPERATIONS: dict[str, Callable[..., Campaign]] = {
    "launch": services.campaign_launch,
    "pause": services.campaign_pause,
    "resume": services.campaign_resume,
    "cancel": services.campaign_cancel,
}
LIVE_STATUSES = (Campaign.Status.RUNNING, Campaign.Status.SCHEDULED, Campaign.Status.PAUSED)
LIST_LIMIT = 200
STATUS_PARTIAL = "campaigns/detail.html#status"


def _status_context(
    request: HtmxHttpRequest, campaign: Campaign, error: DomainError | None = None
) -> dict[str, Any]:
    """What the status card needs: the campaign, its message counts, a refusal if any, and
    whether this person may use the operator buttons."""
    stats = selectors.campaign_stats(campaign=campaign)
    return {
        "campaign": campaign,
        "stats": stats,
        "live": LIVE_STATUSES,
        "error": error,
        "may_launch": request_may(request, Scope.CAMPAIGNS_LAUNCH),
    }


@page_requires(Scope.CAMPAIGNS_READ)
@page_view("GET")
def campaign_list_page(request: HtmxHttpRequest) -> HttpResponse:
    campaigns = selectors.campaign_list()[:LIST_LIMIT]
    context = {"campaigns": campaigns, "nav": "campaigns"}
    return render_page(request, "campaigns/list.html", context)


@page_requires(Scope.CAMPAIGNS_READ)
@page_view("GET")
def campaign_detail_page(request: HtmxHttpRequest, campaign_id: int) -> HttpResponse:
    campaign = selectors.campaign_get(campaign_id=campaign_id)
    context = {"nav": "campaigns", **_status_context(request, campaign)}
    return render_page(request, "campaigns/detail.html", context, partial="status")


@page_requires(Scope.CAMPAIGNS_READ)
@page_view("GET")
def campaign_stats_partial(request: HtmxHttpRequest, campaign_id: int) -> HttpResponse:
    campaign = selectors.campaign_get(campaign_id=campaign_id)
    return render(request, STATUS_PARTIAL, _status_context(request, campaign))


@page_requires(Scope.CAMPAIGNS_READ)
@page_view("GET")
def campaign_preview_partial(request: HtmxHttpRequest, campaign_id: int) -> HttpResponse:
    campaign = selectors.campaign_get(campaign_id=campaign_id)
    try:
        preview, error = selectors.campaign_preview(campaign=campaign), None
    except DomainError as failure:
        preview, error = None, failure
    if preview is not None:
        preview = preview_read(preview, viewer=request.user)
    return render(request, "campaigns/detail.html#preview", {"preview": preview, "error": error})


@page_requires(Scope.CAMPAIGNS_LAUNCH)
@page_view("POST")
def campaign_operate_partial(
    request: HtmxHttpRequest, campaign_id: int, operation: str
) -> HttpResponse:
    operate = OPERATIONS.get(operation)
    if operate is None:
        raise NotFound(f"No operation {operation}.")
    campaign = selectors.campaign_get(campaign_id=campaign_id)
    error = None
    try:
        campaign = operate(campaign=campaign, actor=request.user)
    except DomainError as failure:
        error = failure
    return render(request, STATUS_PARTIAL, _status_context(request, campaign, error))


@page_requires(Scope.CAMPAIGNS_READ)
@page_view("GET")
def campaign_panel_partial(request: HtmxHttpRequest) -> HttpResponse:
    overview = selectors.campaigns_overview()
    return render(request, "campaigns/panel.html", {"overview": overview})
