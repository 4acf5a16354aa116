"""`make run`: callbacks come back to the port it serves; the demo data loads behind a banner."""

import io
import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from core.demo_loading import (
    demo_is_loaded,
    demo_loading_clear,
    demo_loading_mark,
    demo_loading_marker,
)
from core.management.commands.run_stack import Command, stack_environment
from tests.support.processes import run_python


def test_it_points_callbacks_at_the_port_it_serves():
    env = stack_environment({}, host="127.0.0.1", port=9000)

    assert env["PUBLIC_BASE_URL"] == "http://127.0.0.1:9000"
    assert env["PORT"] == "9000"


def test_it_reaches_a_wildcard_bind_through_loopback():
    assert stack_environment({}, host="0.0.0.0", port=9001)["PUBLIC_BASE_URL"] == (
        "http://127.0.0.1:9001"
    )


def test_it_keeps_a_public_url_the_operator_set():
    env = stack_environment(
        {"PUBLIC_BASE_URL": "https://decisions.example.com"}, host="127.0.0.1", port=9000
    )

    assert env["PUBLIC_BASE_URL"] == "https://decisions.example.com"


def test_settings_follow_the_port_when_no_public_url_is_set():
    """What web, worker and beat each read at start (no database is reached to import them)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PUBLIC_BASE_URL", "DJANGO_SETTINGS_MODULE")
    }
    env.update(
        {
            "PORT": "9123",
            "DATABASE_URL": "postgres://nobody@127.0.0.1:1/nothing",
            "DATA_DIR": str(settings.DATA_DIR),
        }
    )
    printed = run_python("import config.settings as s; print(s.PUBLIC_BASE_URL)", env=env)

    assert printed.stdout.strip() == "http://127.0.0.1:9123"


@pytest.fixture
def demo_data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    return tmp_path


@pytest.mark.django_db
def test_it_shows_the_loading_banner_only_while_the_demo_data_loads(client, demo_data_dir):
    demo_loading_mark()
    loading = client.get("/login/")
    demo_loading_clear()
    loaded = client.get("/login/")

    assert 'data-testid="demo-loading"' in loading.content.decode()
    assert 'data-testid="demo-loading"' not in loaded.content.decode()


@pytest.mark.django_db
def test_it_runs_every_demo_step_and_then_clears_the_banner(settings, demo_data_dir):
    settings.DEMO_SETUP_COMMANDS = ["ensure_demo_admin"]
    out = io.StringIO()

    call_command("load_demo_data", stdout=out)

    assert get_user_model().objects.filter(username="admin").exists()
    assert "Demo data ready." in out.getvalue()
    assert not demo_loading_marker().exists()
    assert demo_is_loaded()  # a warm start now starts no loader
    settings.DEMO_SETUP_COMMANDS = ["ensure_demo_admin", "load_demo_rules"]
    assert not demo_is_loaded()  # other demo commands load again


@pytest.mark.django_db
def test_it_clears_the_banner_when_a_demo_step_fails(settings, demo_data_dir):
    settings.DEMO_SETUP_COMMANDS = ["load_demo_records --count=not-a-number"]

    with pytest.raises(CommandError):
        call_command("load_demo_data", stdout=io.StringIO())

    assert not demo_loading_marker().exists()
    assert not demo_is_loaded()  # the next start tries again


def test_it_stops_a_demo_loader_still_running_when_the_stack_stops():
    loader = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])

    Command().demo_data_load_stop(loader)

    assert loader.returncode is not None
