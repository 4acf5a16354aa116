"""`make run` on another port: delivery callbacks must come back to the port it serves."""

import os

from django.conf import settings

from core.management.commands.run_stack import stack_environment
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
