"""The overview's campaigns panel: the delivery funnel, sends over time, webhook rejections."""

from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone

from campaigns import selectors
from core import charts
from core.access import Scope
from core.pages import HtmxHttpRequest, page_view
from core.permissions import page_requires
from core.timeseries import series_fill, time_range_get

FUNNEL_STAGES = ("created", "queued", "sent", "delivered", "undelivered", "failed")


@page_requires(Scope.CAMPAIGNS_READ)
@page_view("GET")
def campaign_overview_partial(request: HtmxHttpRequest) -> HttpResponse:
    time_range = time_range_get(request.GET.get("range"))
    starts = time_range.starts(now=timezone.now())
    buckets = time_range.bucket_labels(starts)
    funnel = selectors.message_funnel(since=starts[0])
    sent = series_fill(
        selectors.messages_sent_over_time(since=starts[0], bucket=time_range.bucket),
        starts=starts,
        names=["sent"],
    )
    rejected = series_fill(
        selectors.webhook_rejections_over_time(since=starts[0], bucket=time_range.bucket),
        starts=starts,
    )
    per = time_range.bucket.total_seconds() / 60
    narrow = charts.PANEL_WIDTH
    context = {
        "time_range": time_range,
        "funnel": charts.bars(
            title="Delivery funnel of messages created in this range",
            values=[(stage, funnel[stage]) for stage in FUNNEL_STAGES],
            width=narrow,
        ),
        "send_rate": charts.columns(
            title=f"Messages sent per {per:g} minutes", buckets=buckets, series=sent, width=narrow
        ),
        "rejections": charts.columns(
            title="Webhooks rejected", buckets=buckets, series=rejected, width=narrow
        ),
        "rejected_total": sum(sum(counts) for counts in rejected.values()),
        "funnel_counts": funnel,
        "campaigns": selectors.campaign_status_counts(),
    }
    return render(request, "campaigns/overview_panel.html", context)
