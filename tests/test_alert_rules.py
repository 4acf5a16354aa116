"""deploy/prometheus: the alert rules and the Grafana dashboard parse, name only metrics the
product exports, and every alert has its entry in docs/operations.md."""

import json
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]
PROMETHEUS = ROOT / "deploy" / "prometheus"
# Metric names in an expression: ours and django-prometheus' (PromQL functions and label names
# never start with these prefixes).
METRIC_NAME = re.compile(r"\b(?:decisioning|django)_[a-zA-Z0-9_:]+")
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("_count", "_sum", "_created"),
}


@pytest.fixture(scope="module")
def exported(django_db_setup, django_db_blocker) -> set[str]:
    """Every sample name /metrics can carry, once a request has been served."""
    from django.test import Client

    with django_db_blocker.unblock():
        client = Client()
        # A plain synchronous page: /healthz is an async view, and a browser test earlier in
        # the same worker leaves Playwright's event loop running in this thread.
        client.get("/login/")
        page = client.get("/metrics").content.decode()
    names = set()
    for family in text_string_to_metric_families(page):
        names.add(family.name)
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ()))
        names.update(sample.name for sample in family.samples)
    return names


@pytest.fixture(scope="module")
def rules() -> list[dict]:
    document = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_every_alert_is_complete_and_documented(rules):
    operations = (ROOT / "docs" / "operations.md").read_text()

    assert len({rule["alert"] for rule in rules}) == len(rules)
    for rule in rules:
        assert rule["labels"]["severity"] in {"page", "ticket"}, rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        anchor = rule["annotations"]["runbook"].removeprefix("docs/operations.md#")
        assert anchor == rule["alert"].lower()
        assert f"#### {rule['alert']}" in operations, f"{rule['alert']} has no runbook entry"


def test_every_alert_names_metrics_the_product_exports(rules, exported):
    for rule in rules:
        named = set(METRIC_NAME.findall(rule["expr"]))
        assert named, f"{rule['alert']} names no product metric"
        assert named <= exported, f"{rule['alert']}: {named - exported} not exported"
        assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]


def test_the_alerts_cover_what_operations_watch(rules):
    watched = " ".join(rule["expr"] for rule in rules)
    for metric in (
        "django_http_responses_total_by_status_view_method_total",  # error rate
        "django_http_requests_latency_seconds_by_view_method_bucket",  # p99 latency
        "decisioning_celery_queue_length",
        "decisioning_celery_queue_oldest_age_seconds",
        "decisioning_webhook_rejections_total",
        "decisioning_messages_total",  # send failures
        "decisioning_model_drift_psi_worst",
        "decisioning_review_queue_oldest_age_seconds",
    ):
        assert metric in watched, metric


def test_every_dashboard_panel_queries_exported_metrics(exported):
    dashboard = json.loads((PROMETHEUS / "grafana-dashboard.json").read_text())

    assert dashboard["uid"] == "decisioning-overview"
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            named = set(METRIC_NAME.findall(target["expr"]))
            assert named, panel["title"]
            assert named <= exported, f"{panel['title']}: {named - exported}"


def test_the_scrape_config_loads_the_rules():
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())

    assert config["rule_files"] == ["alerts.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["decisioning-web"]["metrics_path"] == "/metrics"
    assert jobs["decisioning-web"]["authorization"]["type"] == "Bearer"
