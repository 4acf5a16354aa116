"""The shell pages every user lands on: the overview frame; each app fills its own panels."""

from django.conf import settings
from django.http import HttpResponse
from django.urls import reverse

from core.access import Scope
from core.pages import HtmxHttpRequest, page_view, render_page
from core.permissions import page_for_anyone_signed_in, request_may
from core.timeseries import TIME_RANGES, time_range_get

# What a person needs to see each panel (the panel's own view checks the same); a panel not
# named here is shown to no one, so a new app has to say who may see it.
PANEL_PERMISSIONS: dict[str, str] = {
    "decisions": Scope.DECISIONS_READ,
    "records": Scope.RECORDS_READ,
    "campaigns": Scope.CAMPAIGNS_READ,
    "reviews": Scope.REVIEWS_READ,
}
# How often the panels reload themselves (an htmx poll of each panel, not of the page).
REFRESH_SECONDS = 30


@page_for_anyone_signed_in  # a frame: each panel it loads checks its own permission
@page_view("GET")
def dashboard_page(request: HtmxHttpRequest) -> HttpResponse:
    """Any signed-in person lands here; it shows only the panels their roles may read, over
    the time range picked (the picker swaps the panels, which then poll on their own)."""
    time_range = time_range_get(request.GET.get("range"))
    panels = [
        {"name": name, "title": title, "url": f"{reverse(url_name)}?range={time_range.key}"}
        for name, title, url_name in settings.DASHBOARD_PANELS
        if name in PANEL_PERMISSIONS and request_may(request, PANEL_PERMISSIONS[name])
    ]
    context = {
        "panels": panels,
        "nav": "dashboard",
        "time_range": time_range,
        "time_ranges": TIME_RANGES.values(),
        "refresh_seconds": REFRESH_SECONDS,
    }
    return render_page(request, "core/dashboard.html", context, partial="panels")
