"""OpenTelemetry: off unless an OTLP endpoint is set; when on, a request, its queries and the
tasks it sends are spans of one trace, and the request span names the request id."""

import pytest
from django.conf import settings as django_settings
from django.db import connections
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from core.tracing import tracing_configure, tracing_remove
from tests.support.private_broker import private_broker
from tests.test_request_id_in_tasks import message_in

__all__ = ["private_broker"]  # the fixture


def test_it_traces_nothing_without_an_otlp_endpoint(settings):
    settings.OTEL_EXPORTER_OTLP_ENDPOINT = ""

    assert tracing_configure() is None
    assert not any("opentelemetry" in name for name in django_settings.MIDDLEWARE)


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing_configure(tracer_provider=provider)
    try:
        yield exporter
    finally:
        tracing_remove()


@pytest.mark.django_db
def test_it_traces_requests_queries_and_published_tasks(spans, api_client, private_broker):
    from config.celery import app

    folder = private_broker("filesystem://")

    response = api_client.get("/api/v1/whoami/", HTTP_X_REQUEST_ID="trace-me-1")
    fresh = connections.create_connection("default")  # a new connection, as each process opens
    try:
        fresh.cursor().execute("SELECT 1")
    finally:
        fresh.close()
    app.send_task("decisions.backtest_run", args=(0,), queue="backtests")

    assert response.status_code == 200
    finished = spans.get_finished_spans()
    server = [span for span in finished if span.kind == SpanKind.SERVER]
    assert len(server) == 1
    assert server[0].attributes["http.request.header.x_request_id"] == "trace-me-1"
    assert any(span.attributes.get("db.system") == "postgresql" for span in finished)
    assert any(span.kind == SpanKind.PRODUCER for span in finished)
    # The trace context travels in the task's headers: the worker's span is a child.
    assert "traceparent" in message_in(folder, "backtests").headers
