"""The shell pages every user lands on: the dashboard frame; each app fills its own panel."""

from django.conf import settings
from django.http import HttpResponse
from django.urls import reverse

from core.access import Scope
from core.pages import HtmxHttpRequest, page_view, render_page
from core.permissions import page_for_anyone_signed_in, request_may

# What a person needs to see each panel (the panel's own view checks the same); a panel not
# named here is shown to no one, so a new app has to say who may see it.
PANEL_PERMISSIONS: dict[str, str] = {
    "decisions": Scope.DECISIONS_READ,
    "records": Scope.RECORDS_READ,
    "campaigns": Scope.CAMPAIGNS_READ,
    "reviews": Scope.REVIEWS_READ,
}


@page_for_anyone_signed_in  # a frame: each panel it loads checks its own permission
@page_view("GET")
def dashboard_page(request: HtmxHttpRequest) -> HttpResponse:
    """Any signed-in person lands here; it shows only the panels their roles may read."""
    panels = [
        {"name": name, "title": title, "url": reverse(url_name)}
        for name, title, url_name in settings.DASHBOARD_PANELS
        if name in PANEL_PERMISSIONS and request_may(request, PANEL_PERMISSIONS[name])
    ]
    return render_page(request, "core/dashboard.html", {"panels": panels, "nav": "dashboard"})
