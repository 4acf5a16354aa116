"""HTMX pages: campaign list, detail with live stats, preview, and the operator buttons.

Reading needs `campaigns:read`, the buttons `campaigns:launch`; preview samples show masked
without `pii:read` (and their unmasked reads are audited). A launch, and a preview over a big
audience, run as background jobs (campaigns.services.jobs): the page shows their progress by
polling and their outcome inline, as the API does with 202 and a job to poll.
"""

from collections.abc import Callable
from typing import Any

from django.http import HttpResponse
from django.shortcuts import render

from campaigns import selectors, services
from campaigns.models import Campaign, CampaignJob
from campaigns.pii import preview_read
from core.access import Scope
from core.errors import DomainError, NotFound
from core.pages import HtmxHttpRequest, page_view, render_page
from core.permissions import page_requires, request_may

# Launch is not here: it is a background job (campaign_launch_partial).
OPERATIONS: dict[str, Callable[..., Campaign]] = {
    "pause": services.campaign_pause,
    "resume": services.campaign_resume,
    "cancel": services.campaign_cancel,
}
LIVE_STATUSES = (Campaign.Status.RUNNING, Campaign.Status.SCHEDULED, Campaign.Status.PAUSED)
ACTIVE_JOB = (CampaignJob.Status.QUEUED, CampaignJob.Status.RUNNING)
LIST_LIMIT = 200
STATUS_PARTIAL = "campaigns/detail.html#status"
PREVIEW_PARTIAL = "campaigns/detail.html#preview"


def job_failure(job: CampaignJob) -> dict[str, Any]:
    """A failed job's error in the shape of components/error.html."""
    return {
        "title": "The job failed",
        "detail": job.error.get("detail", "The job did not finish."),
        "errors": job.error.get("errors") or {},
    }


def _status_context(
    request: HtmxHttpRequest, campaign: Campaign, error: Any = None
) -> dict[str, Any]:
    """What the status card needs: the campaign, its message counts, its launch job while it
    runs (or why it failed), a refusal if any, and whether this person may use the buttons."""
    launch = selectors.campaign_job_latest(campaign=campaign, kind=CampaignJob.Kind.LAUNCH)
    launching = launch if launch is not None and launch.status in ACTIVE_JOB else None
    if error is None and launch is not None and campaign.status == Campaign.Status.DRAFT:
        error = job_failure(launch) if launch.status == CampaignJob.Status.FAILED else None
    return {
        "campaign": campaign,
        "stats": selectors.campaign_stats(campaign=campaign),
        "live": LIVE_STATUSES,
        "launching": launching,
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
@page_view("POST")
def campaign_preview_partial(request: HtmxHttpRequest, campaign_id: int) -> HttpResponse:
    """A small audience is previewed at once; a big one starts a job the page then polls."""
    campaign = selectors.campaign_get(campaign_id=campaign_id)
    try:
        if not services.preview_runs_inline():
            job = services.campaign_job_request(
                kind=CampaignJob.Kind.PREVIEW, campaign=campaign, actor=request.user
            )
            return render(request, PREVIEW_PARTIAL, {"job": job, "campaign": campaign})
        preview = selectors.campaign_preview(campaign=campaign)
    except DomainError as failure:
        return render(request, PREVIEW_PARTIAL, {"error": failure})
    preview = preview_read(preview, viewer=request.user)
    return render(request, PREVIEW_PARTIAL, {"preview": preview})


@page_requires(Scope.CAMPAIGNS_READ)
@page_view("GET")
def campaign_preview_job_partial(
    request: HtmxHttpRequest, campaign_id: int, job_id: int
) -> HttpResponse:
    """A preview job: its progress while it runs (polled), then its preview or its error."""
    campaign = selectors.campaign_get(campaign_id=campaign_id)
    job = selectors.campaign_job_get(
        job_id=job_id, kind=CampaignJob.Kind.PREVIEW, campaign=campaign
    )
    if job.status in ACTIVE_JOB:
        return render(request, PREVIEW_PARTIAL, {"job": job, "campaign": campaign})
    if job.status == CampaignJob.Status.FAILED:
        return render(request, PREVIEW_PARTIAL, {"error": job_failure(job)})
    return render(
        request, PREVIEW_PARTIAL, {"preview": preview_read(job.result, viewer=request.user)}
    )


@page_requires(Scope.CAMPAIGNS_LAUNCH)
@page_view("POST")
def campaign_launch_partial(request: HtmxHttpRequest, campaign_id: int) -> HttpResponse:
    """Queue the launch; the status card then polls until the job has run."""
    campaign = selectors.campaign_get(campaign_id=campaign_id)
    error = None
    try:
        services.campaign_job_request(
            kind=CampaignJob.Kind.LAUNCH, campaign=campaign, actor=request.user
        )
    except DomainError as failure:
        error = failure
    return render(request, STATUS_PARTIAL, _status_context(request, campaign, error))


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
