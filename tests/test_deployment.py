"""docker-compose.yml and the Dockerfile, checked without an engine: services, health checks,
and that every command they run exists in the product and consumes the queues it uses."""

import http.server
import importlib
import os
import re
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from django.core.management import get_commands

from core.telemetry import celery_queues_in_use
from tests.support.private_broker import private_broker

__all__ = ["private_broker"]  # the fixture
ROOT = Path(__file__).resolve().parents[1]
APP_SERVICES = {"migrate", "web", "worker", "heavy", "beat"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def dockerfile() -> str:
    # Continuation lines joined, so each instruction is one line.
    return (ROOT / "Dockerfile").read_text().replace("\\\n", " ")


def command_of(service: dict) -> list[str]:
    command = service["command"]
    return shlex.split(command) if isinstance(command, str) else command


def option(command: list[str], *names: str) -> str | None:
    for index, word in enumerate(command):
        if word in names:
            return command[index + 1]
    return None


def test_it_defines_every_service_with_a_health_check(compose):
    services = compose["services"]

    assert set(services) == {"db", "redis", *APP_SERVICES}
    for name, service in services.items():
        if name == "migrate":
            continue  # a one-shot job: done when it exits
        check = service.get("healthcheck", {})
        assert check.get("test"), name
        assert not check.get("disable"), name
    assert services["web"]["ports"] == ["8000:8000"]


def test_each_health_check_runs_a_script_or_command_of_the_product(compose):
    services = compose["services"]
    for name in ("web", "beat"):
        test = services[name]["healthcheck"]["test"]
        assert test[:2] == ["CMD", "python"], name
        assert (ROOT / test[2]).is_file(), test
    for name in ("worker", "heavy"):
        test = services[name]["healthcheck"]["test"][1]
        node = re.search(r"-d (\S+)@", test).group(1)
        hostname = option(command_of(services[name]), "--hostname", "-n") or "celery@%h"
        assert hostname.split("@")[0] == node, name  # the ping reaches this very worker


def test_the_workers_consume_every_queue_the_product_sends_to(compose):
    services = compose["services"]
    consumed = set()
    for name in ("worker", "heavy"):
        command = command_of(services[name])
        assert command[:4] == ["celery", "-A", "config", "worker"]
        consumed |= set(option(command, "--queues", "-Q").split(","))

    assert consumed == set(celery_queues_in_use())
    assert set(celery_queues_in_use()) >= {"celery", "backtests", "heavy"}


def test_the_commands_exist_in_the_product(compose):
    services = compose["services"]
    migrate = command_of(services["migrate"])
    assert migrate[:2] == ["python", "manage.py"]
    assert migrate[2] in get_commands()
    assert importlib.import_module("config.celery").app.main == "decisioning"
    beat = command_of(services["beat"])
    assert beat[:4] == ["celery", "-A", "config", "beat"]
    for name in ("worker", "heavy"):  # their own port for metrics, and everything else shared
        environment = services[name]["environment"]
        assert environment["CELERY_WORKER_METRICS_PORT"] == "9808"
        assert environment["DATABASE_URL"] == services["web"]["environment"]["DATABASE_URL"]


def test_the_dockerfile_pins_uv_runs_gunicorn_and_checks_health(dockerfile, compose):
    assert re.search(r"pip install [^\n]*\buv==\d+\.\d+\.\d+", dockerfile)
    healthcheck = re.search(r"^HEALTHCHECK .*CMD (\[.*\])$", dockerfile, re.M).group(1)
    assert yaml.safe_load(healthcheck) == compose["services"]["web"]["healthcheck"]["test"][1:]
    cmd = re.search(r"^CMD (\[.*\])$", dockerfile, re.M).group(1)
    gunicorn = shlex.split(yaml.safe_load(cmd)[-1])
    assert gunicorn[:3] == ["exec", "gunicorn", "config.wsgi:application"]
    config = option(gunicorn, "--config")
    assert importlib.util.find_spec(config.removeprefix("python:")) is not None
    assert re.search(r"^EXPOSE 8000$", dockerfile, re.M)
    assert "PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus-metrics" in dockerfile
    assert compose["x-app"]["tmpfs"] == ["/tmp/prometheus-metrics:mode=1777"]


@pytest.mark.django_db
def test_the_web_health_check_passes_whatever_allowed_hosts_lists(client, settings):
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import http_healthcheck
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    settings.ALLOWED_HOSTS = ["decisioning.example.com"]

    host = http_healthcheck.allowed_host("decisioning.example.com,10.0.0.5")
    assert client.get("/healthz", HTTP_HOST="127.0.0.1:8000").status_code == 400  # the old probe
    assert client.get("/healthz", HTTP_HOST=host).status_code == 200
    assert http_healthcheck.allowed_host(".example.com") == "example.com"
    assert http_healthcheck.allowed_host("*") == "localhost"

    seen_hosts: list[str] = []

    class Healthz(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen_hosts.append(self.headers["Host"])
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Healthz)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        probe = subprocess.run(
            [sys.executable, str(ROOT / "scripts/http_healthcheck.py")],
            env={**os.environ, "PORT": str(server.server_port), "ALLOWED_HOSTS": "app.example"},
            capture_output=True,
            timeout=30,
        )
    finally:
        server.shutdown()
    assert probe.returncode == 0, probe.stdout
    assert seen_hosts == ["app.example"]


def run_beat_healthcheck(heartbeat: Path) -> int:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts/beat_healthcheck.py")],
        env={**os.environ, "CELERY_BEAT_HEARTBEAT_FILE": str(heartbeat)},
        capture_output=True,
        timeout=30,
    ).returncode


def test_beat_is_healthy_while_its_scheduler_ticks(settings, tmp_path, private_broker):
    from config.celery import app
    from core.beat import HeartbeatScheduler

    private_broker("filesystem://")  # what beat publishes as it ticks goes here
    heartbeat = tmp_path / "heartbeat"
    settings.CELERY_BEAT_HEARTBEAT_FILE = str(heartbeat)
    assert app.conf.beat_scheduler == "core.beat:HeartbeatScheduler"
    assert run_beat_healthcheck(heartbeat) == 1  # never ticked

    scheduler = HeartbeatScheduler(app=app, schedule_filename=str(tmp_path / "schedule"))
    try:
        scheduler.tick()
    finally:
        scheduler.close()
    assert run_beat_healthcheck(heartbeat) == 0

    stale = time.time() - 600
    os.utime(heartbeat, (stale, stale))
    assert run_beat_healthcheck(heartbeat) == 1
