"""HTMX pages: campaign list, detail with live stats, preview, and the operator buttons.

Reading needs `campaigns:read`, the buttons `campaigns:launch`; preview samples show masked
without `pii:read` (and their unmasked reads are audited). A launch, and a preview over a big
audience, run as background jobs (campaigns.services.jobs): the page shows their progress by
polling and their outcome inline, as the API does with 202 and a job to poll.
"""

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone

from campaigns import page_selectors, selectors, services
from campaigns.audience import EXCLUSION_REASONS
from campaigns.models import Campaign, CampaignJob
from campaigns.pii import phone_shown, preview_read
from core import charts
from core.access import Scope
from core.errors import DomainError, NotFound
from core.pages import PAGE_SIZE, HtmxHttpRequest, page_view, paginate, render_page, wants_partial
from core.permissions import page_requires, request_may
from core.pii import may_read_pii, pii_read_audit

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
EXCLUSIONS_PARTIAL = "campaigns/detail.html#exclusions"
CHARTS_PARTIAL = "campaigns/detail.html#charts"
FUNNEL_STAGES = ("queued", "sent", "delivered", "failed", "undelivered")


def job_failure(job: CampaignJob) -> dict[str, Any]:
    """A failed job's error in the shape of components/error.html."""
    return {
        "title": "The job failed",
        "detail": job.error.get("detail", "The job did not finish."),
        "errors": job.error.get("errors") or {},
    }


def _status_context(
    request: HtmxHttpRequest,
    campaign: Campaign,
    error: Any = None,
    summary: selectors.CampaignSummary | None = None,
) -> dict[str, Any]:
    """What the status card needs: the campaign, its message counts, its launch job while it
    runs (or why it failed), a refusal if any, and whether this person may use the buttons."""
    launch = selectors.campaign_job_latest(campaign=campaign, kind=CampaignJob.Kind.LAUNCH)
    launching = launch if launch is not None and launch.status in ACTIVE_JOB else None
    if error is None and launch is not None and campaign.status == Campaign.Status.DRAFT:
        error = job_failure(launch) if launch.status == CampaignJob.Status.FAILED else None
    return {
        "campaign": campaign,
        "stats": (summary or selectors.campaign_summary(campaign=campaign)).stats,
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


def _charts_context(campaign: Campaign, summary: selectors.CampaignSummary) -> dict[str, Any]:
    """The funnel, the send rate against the configured limit, failures by error code: from
    the summary the status card reads too, so no query of their own."""
    funnel = summary.funnel
    rate = page_selectors.campaign_send_rate(summary=summary)
    limit = 60 * int(campaign.config.get("rate_per_second") or 10)
    failures = summary.stats["failures_by_error_code"]
    return {
        "funnel": charts.bars(
            title="Delivery funnel",
            values=[(stage, funnel[stage]) for stage in FUNNEL_STAGES],
            width=charts.PANEL_WIDTH,
        ),
        "send_rate": charts.columns_with_limit(
            title="SMS segments sent per minute",
            buckets=[timezone.localtime(minute).strftime("%H:%M") for minute, _n in rate],
            series={"segments sent": [n for _minute, n in rate]},
            limit=limit,
            limit_name="rate limit",
            width=charts.PAGE_WIDTH,
        ),
        "failures": charts.bars(
            title="Failures by error code",
            values=[(f"error {code}", count) for code, count in failures.items()],
            width=charts.PANEL_WIDTH,
        ),
    }


def _messages_context(request: HtmxHttpRequest, campaign: Campaign) -> dict[str, Any]:
    """A page of the campaign's messages (for a reader of messages), numbers masked unless
    the reader may see them (and then audited)."""
    if not request_may(request, Scope.MESSAGES_READ):
        return {"messages_shown": False}
    paged = paginate(request, page_selectors.campaign_messages(campaign=campaign))
    unmasked = may_read_pii(request.user)
    rows = [
        {"message": message, "phone": phone_shown(message.contact.phone, mask=not unmasked)}
        for message in paged["page"]
    ]
    if unmasked:
        ids = [row["message"].contact_id for row in rows]
        pii_read_audit(actor=request.user, target_type="contact", target_ids=ids)
    return {"messages_shown": True, "message_rows": rows, **paged}


@page_requires(Scope.CAMPAIGNS_READ)
@page_view("GET")
def campaign_detail_page(request: HtmxHttpRequest, campaign_id: int) -> HttpResponse:
    """The campaign: its config, status card, preview, charts and messages (a page of the
    messages alone for an htmx page turn)."""
    campaign = selectors.campaign_get(campaign_id=campaign_id)
    context: dict[str, Any] = {"campaign": campaign, **_messages_context(request, campaign)}
    if wants_partial(request):  # a page turn of the message table: nothing else is drawn
        return render_page(request, "campaigns/detail.html", context, partial="messages")
    summary = selectors.campaign_summary(campaign=campaign)
    context.update(
        nav="campaigns",
        may_write=request_may(request, Scope.CAMPAIGNS_WRITE),
        **_status_context(request, campaign, summary=summary),
        **_charts_context(campaign, summary),
    )
    return render_page(request, "campaigns/detail.html", context)


@page_requires(Scope.CAMPAIGNS_READ)
@page_view("GET")
def campaign_charts_partial(request: HtmxHttpRequest, campaign_id: int) -> HttpResponse:
    """The charts again (the page polls them while the campaign sends)."""
    campaign = selectors.campaign_get(campaign_id=campaign_id)
    summary = selectors.campaign_summary(campaign=campaign)
    context = {"campaign": campaign, "live": LIVE_STATUSES, **_charts_context(campaign, summary)}
    return render(request, CHARTS_PARTIAL, context)


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
    return render(request, PREVIEW_PARTIAL, {"preview": preview, "campaign": campaign})


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
    preview = preview_read(job.result, viewer=request.user)
    return render(request, PREVIEW_PARTIAL, {"preview": preview, "campaign": campaign})


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


@page_requires(Scope.CAMPAIGNS_READ)
@page_view("GET")
def campaign_exclusions_partial(request: HtmxHttpRequest, campaign_id: int) -> HttpResponse:
    """Who a launch now would skip and why, a page at a time, narrowed to one reason; counted
    afresh, as the preview does. An audience too big to evaluate in the request is browsed
    over its first CAMPAIGNS_PREVIEW_INLINE_MAX_CONTACTS contacts, and the page says so."""
    campaign = selectors.campaign_get(campaign_id=campaign_id)
    reason = request.GET.get("reason", "")
    reason = reason if reason in EXCLUSION_REASONS else ""
    total = page_selectors.contact_count()
    window = settings.CAMPAIGNS_PREVIEW_INLINE_MAX_CONTACTS
    context: dict[str, Any] = {"campaign": campaign, "reason": reason, "total": total}
    try:
        exclusions = page_selectors.campaign_exclusions(
            campaign=campaign, reason=reason, limit=window
        )
    except DomainError as failure:
        return render(request, EXCLUSIONS_PARTIAL, {**context, "error": failure})
    page = Paginator(exclusions.rows, PAGE_SIZE).get_page(request.GET.get("page"))
    contacts = page_selectors.contacts_by_id(ids=[contact_id for contact_id, _why in page])
    unmasked = may_read_pii(request.user)
    if unmasked:
        pii_read_audit(actor=request.user, target_type="contact", target_ids=list(contacts))
    context.update(
        excluded=exclusions.excluded,
        seen=exclusions.seen,
        exclusion_page=page,
        exclusion_query=f"reason={reason}" if reason else "",
        rows=[
            {"phone": phone_shown(contacts[contact_id].phone, mask=not unmasked), "reason": why}
            for contact_id, why in page
            if contact_id in contacts
        ],
    )
    return render(request, EXCLUSIONS_PARTIAL, context)
