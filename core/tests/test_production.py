"""DJANGO_ENV=production refuses to start with settings unsafe for real users."""

import json
import secrets
import subprocess
import sys

import pytest

from core.production import production_refusal
from tests.support.processes import ROOT, production_env, run_python

# The settings module's names as tests/support/processes.production_env sets them.
SAFE_SETTINGS = {
    "DEBUG": False,
    "SECRET_KEY": secrets.token_urlsafe(60),
    "SMS_PROVIDER": "twilio",
    "ALLOW_SIMULATOR_IN_PRODUCTION": False,
    "PUBLIC_BASE_URL": "https://decisions.example.com",
    "SMS_ALLOWED_COUNTRIES": ["GB", "IE"],
    "CELERY_BROKER_URL": "redis://redis.example.com:6379/0",
    "RATE_LIMIT_STORAGE_URL": "redis://redis.example.com:6379/1",
    "REDIS_URL": "redis://redis.example.com:6379/1",
}


def settings_import(**overrides: str):
    """Import the settings module in a fresh process with this environment (nothing else runs)."""
    return run_python(
        "import config.settings as s; print('started', s.PRODUCTION)",
        env=production_env(**overrides),
    )


def test_it_starts_with_safe_production_settings():
    result = settings_import()

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "started True"


REFUSALS = {
    "debug": ({"DEBUG": "true"}, "DEBUG is on"),
    "few-unique-characters": ({"SECRET_KEY": "abcd" * 15}, "fewer than 5 unique characters"),
    "short-secret-key": ({"SECRET_KEY": secrets.token_urlsafe(30)}, "shorter than 50 characters"),
    "django-insecure": (
        {"SECRET_KEY": "django-insecure-" + secrets.token_urlsafe(60)},
        "django-insecure",
    ),
    "development-secret-key": (
        {"SECRET_KEY": "dev-only-insecure-key-never-used-in-production"},
        "the development default",
    ),
    "simulator": ({"SMS_PROVIDER": "simulator"}, "SMS_PROVIDER is the simulator"),
    "plain-http": ({"PUBLIC_BASE_URL": "http://decisions.example.com"}, "is not HTTPS"),
    "filesystem-broker": ({"CELERY_BROKER_URL": "filesystem://"}, "the filesystem broker"),
    "memory-rate-limits": ({"RATE_LIMIT_STORAGE_URL": "memory://"}, "in memory"),
    "no-redis": ({"REDIS_URL": ""}, "in memory"),
}

# Each case imports the settings module afresh from its own environment, all in one child
# process: starting a process costs more than the import itself.
EACH_SETTINGS_IMPORT = """
import json, os, runpy, sys
base = dict(os.environ)
outcomes = {}
for case, overrides in json.loads(sys.stdin.read()).items():
    os.environ.clear()
    os.environ.update(base | overrides)
    try:
        runpy.run_path("config/settings.py", run_name="config.settings")
        outcomes[case] = "started"
    except Exception as error:
        outcomes[case] = f"{type(error).__name__}: {error}"
print(json.dumps(outcomes))
"""


@pytest.fixture(scope="module")
def refusals() -> dict[str, str]:
    cases = {case: overrides for case, (overrides, _named) in REFUSALS.items()}
    result = subprocess.run(
        [sys.executable, "-c", EACH_SETTINGS_IMPORT],
        input=json.dumps(cases),
        cwd=ROOT,
        env=production_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("case", REFUSALS)
def test_it_refuses_to_start_in_production_with(case, refusals):
    _overrides, named = REFUSALS[case]

    assert refusals[case].startswith(
        "ImproperlyConfigured: DJANGO_ENV=production refuses to start:"
    )
    assert named in refusals[case]


def test_it_refuses_nothing_in_settings_that_are_safe_for_production():
    assert production_refusal(SAFE_SETTINGS) is None


def test_it_names_each_problem_on_a_line_of_its_own():
    refusal = production_refusal(SAFE_SETTINGS | {"DEBUG": True, "SMS_ALLOWED_COUNTRIES": []})

    assert refusal is not None
    assert refusal.splitlines()[1:] == [
        "  - DEBUG is on (it shows settings and stack traces to anyone): DEBUG=false",
        "  - SMS_ALLOWED_COUNTRIES is empty (SMS pumping could reach any country): "
        "SMS_ALLOWED_COUNTRIES=GB,DE,US (ISO regions)",
    ]


def test_it_lists_every_problem_at_once():
    result = settings_import(
        DEBUG="true", SMS_PROVIDER="simulator", CELERY_BROKER_URL="filesystem://"
    )

    assert result.returncode != 0
    problems = [line for line in result.stderr.splitlines() if line.startswith("  - ")]
    assert len(problems) == 3


def test_a_rehearsal_may_run_the_simulator_when_it_says_so():
    result = settings_import(SMS_PROVIDER="simulator", ALLOW_SIMULATOR_IN_PRODUCTION="true")

    assert result.returncode == 0, result.stderr
