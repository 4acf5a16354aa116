"""/metrics for Prometheus: open in development, behind a bearer token in production.

HTTP metrics from django-prometheus, business metrics from core.telemetry, one page.
"""

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from core.telemetry import metrics_registry


def metrics(request: HttpRequest) -> HttpResponse:
    token = settings.METRICS_TOKEN
    if token or settings.PRODUCTION:
        supplied = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not token or not hmac.compare_digest(supplied.encode(), token.encode()):
            return HttpResponse(
                "Forbidden: a bearer token is required.", status=403, content_type="text/plain"
            )
    return HttpResponse(generate_latest(metrics_registry()), content_type=CONTENT_TYPE_LATEST)
