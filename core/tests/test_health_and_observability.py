import json
import logging

import pytest


@pytest.mark.django_db
def test_it_reports_every_part_healthy(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "failing": [],
        "checks": {"database": "ok", "broker": "ok", "cache": "ok"},
    }


@pytest.mark.django_db
def test_it_names_the_broker_when_it_is_unreachable(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    settings.CELERY_BROKER_TRANSPORT = None
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["failing"] == ["broker"]


@pytest.mark.django_db
def test_it_echoes_a_valid_request_id_and_replaces_a_forged_one(client):
    kept = client.get("/healthz", HTTP_X_REQUEST_ID="abc-123")
    replaced = client.get("/healthz", HTTP_X_REQUEST_ID="bad id\nwith newline")

    assert kept["X-Request-ID"] == "abc-123"
    assert replaced["X-Request-ID"] != "bad id\nwith newline"
    assert len(replaced["X-Request-ID"]) == 36


@pytest.mark.django_db
def test_it_logs_json_lines_carrying_the_request_id(client, caplog):
    caplog.set_level(logging.INFO)
    client.get("/api/v1/whoami/", HTTP_X_REQUEST_ID="log-me-42")

    started = [
        r
        for r in caplog.records
        if isinstance(r.msg, dict) and r.msg.get("event") == "request_started"
    ]
    formatter = logging.getHandlerByName("default").formatter
    line = json.loads(formatter.format(started[-1]))
    assert line["request_id"] == "log-me-42"
    assert line["level"] == "info"


@pytest.mark.django_db
def test_it_exports_prometheus_metrics(client):
    client.get("/healthz")
    response = client.get("/metrics")

    assert response.status_code == 200
    assert b"django_http_requests_total_by_method_total" in response.content


@pytest.mark.django_db
def test_it_guards_metrics_with_a_token_when_configured(client, settings):
    settings.METRICS_TOKEN = "s3cret"

    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret").status_code == 200


def test_it_propagates_the_request_id_into_celery_task_headers():
    """django-structlog adds the bound request id to every task published during a request."""
    import structlog
    from celery import signals

    structlog.contextvars.bind_contextvars(request_id="from-request-7")
    headers: dict = {}
    try:
        signals.before_task_publish.send(sender="any.task", headers=headers, body=None)
    finally:
        structlog.contextvars.unbind_contextvars("request_id")

    assert headers["__django_structlog__"]["request_id"] == "from-request-7"
