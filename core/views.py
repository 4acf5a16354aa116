"""The shell pages every user lands on: the dashboard frame; each app fills its own panel."""

from django.conf import settings
from django.http import HttpResponse
from django.urls import reverse

from core.pages import HtmxHttpRequest, page_view, render_page
from core.permissions import page_for_anyone_signed_in


@page_for_anyone_signed_in  # a frame: each panel it loads checks its own permission
@page_view("GET")
def dashboard_page(request: HtmxHttpRequest) -> HttpResponse:
    panels = [
        {"name": name, "title": title, "url": reverse(url_name)}
        for name, title, url_name in settings.DASHBOARD_PANELS
    ]
    return render_page(request, "core/dashboard.html", {"panels": panels, "nav": "dashboard"})
