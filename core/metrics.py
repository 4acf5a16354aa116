"""/metrics for Prometheus: open in development, behind a bearer token in production."""

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django_prometheus.exports import ExportToDjangoView


def metrics(request: HttpRequest) -> HttpResponse:
    token = settings.METRICS_TOKEN
    if token or settings.PRODUCTION:
        supplied = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not token or not hmac.compare_digest(supplied.encode(), token.encode()):
            return HttpResponse(
                "Forbidden: a bearer token is required.", status=403, content_type="text/plain"
            )
    return ExportToDjangoView(request)
