"""The shell pages every user lands on: the dashboard frame; each app fills its own panel."""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    panels = [
        {"name": name, "title": title, "url": reverse(url_name)}
        for name, title, url_name in settings.DASHBOARD_PANELS
    ]
    return render(request, "core/dashboard.html", {"panels": panels, "nav": "dashboard"})
