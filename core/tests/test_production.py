"""DJANGO_ENV=production refuses to start with settings unsafe for real users."""

import secrets

import pytest

from tests.support.processes import production_env, run_python


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


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"DEBUG": "true"}, "DEBUG is on"),
        ({"SECRET_KEY": "abcd" * 15}, "fewer than 5 unique characters"),
        ({"SECRET_KEY": secrets.token_urlsafe(30)}, "shorter than 50 characters"),
        ({"SECRET_KEY": "django-insecure-" + secrets.token_urlsafe(60)}, "django-insecure"),
        (
            {"SECRET_KEY": "dev-only-insecure-key-never-used-in-production"},
            "the development default",
        ),
        ({"SMS_PROVIDER": "simulator"}, "SMS_PROVIDER is the simulator"),
        ({"PUBLIC_BASE_URL": "http://decisions.example.com"}, "PUBLIC_BASE_URL is not HTTPS"),
        ({"CELERY_BROKER_URL": "filesystem://"}, "the filesystem broker"),
        ({"RATE_LIMIT_STORAGE_URL": "memory://"}, "in memory"),
        ({"REDIS_URL": ""}, "in memory"),
    ],
    ids=[
        "debug",
        "few-unique-characters",
        "short-secret-key",
        "django-insecure",
        "development-secret-key",
        "simulator",
        "plain-http",
        "filesystem-broker",
        "memory-rate-limits",
        "no-redis",
    ],
)
def test_it_refuses_to_start_in_production_with(overrides, named):
    result = settings_import(**overrides)

    assert result.returncode != 0
    assert "ImproperlyConfigured: DJANGO_ENV=production refuses to start:" in result.stderr
    assert named in result.stderr
    assert "started" not in result.stdout


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
