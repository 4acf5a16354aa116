"""OpenTelemetry traces for Django requests, psycopg queries and Celery tasks (docs/adr/0009).

Off unless OTEL_EXPORTER_OTLP_ENDPOINT is set: nothing is imported, patched or exported then.
The web process turns it on from config/wsgi.py and config/asgi.py, each Celery worker process
from config/celery.py (after the fork, so the exporter's thread lives in the child). Celery's
instrumentation carries the trace context in the task's headers, so a task's span is a child
of the request's; each request span carries the request id the logs carry.
"""

import os
from typing import Any

from django.conf import settings

_configured = False


def tracing_enabled() -> bool:
    return bool(settings.OTEL_EXPORTER_OTLP_ENDPOINT)


def _request_id_on_span(span: Any, request: Any, response: Any) -> None:
    request_id = response.get("X-Request-ID") if response is not None else None
    if span is not None and span.is_recording() and request_id:
        span.set_attribute("http.request.header.x_request_id", request_id)


def tracing_configure(*, span_processor: Any = None, tracer_provider: Any = None) -> Any:
    """Instrument Django, psycopg and Celery, exporting over OTLP/HTTP; None when off.

    Tests pass their own tracer provider (with an in-memory exporter); everyone else gets the
    global provider, created once per process.
    """
    global _configured
    if tracer_provider is None and (not tracing_enabled() or _configured):
        return None
    from opentelemetry import trace
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    if tracer_provider is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        tracer_provider = TracerProvider(
            resource=Resource.create({"service.name": settings.OTEL_SERVICE_NAME})
        )
        # The exporter reads OTEL_EXPORTER_OTLP_* itself; a settings-only endpoint is passed.
        endpoint = None
        if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
            endpoint = settings.OTEL_EXPORTER_OTLP_ENDPOINT.rstrip("/") + "/v1/traces"
        tracer_provider.add_span_processor(
            span_processor or BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint))
        )
        trace.set_tracer_provider(tracer_provider)
        _configured = True
    DjangoInstrumentor().instrument(
        tracer_provider=tracer_provider, response_hook=_request_id_on_span
    )
    PsycopgInstrumentor().instrument(tracer_provider=tracer_provider)
    CeleryInstrumentor().instrument(tracer_provider=tracer_provider)
    return tracer_provider


def tracing_remove() -> None:
    """Undo tracing_configure (tests only: instrumentation is process-wide)."""
    global _configured
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor

    DjangoInstrumentor().uninstrument()
    PsycopgInstrumentor().uninstrument()
    CeleryInstrumentor().uninstrument()
    _configured = False
