"""Helpers for tests that run the product as separate processes (web server, workers)."""

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def product_env(**overrides: str) -> dict[str, str]:
    """The environment for a child process of the product (settings from the environment)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    for test_only in ("DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE"):
        env.pop(test_only, None)
    env.update(overrides)
    return env


def production_env(**overrides: str) -> dict[str, str]:
    """A product environment production starts with (core.production refuses anything less);
    nothing in it is reached by `check` or by importing the settings."""
    safe = dict(
        DJANGO_ENV="production",
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(60),
        ALLOWED_HOSTS="decisions.example.com",
        DATABASE_URL="postgres://app:pw@db.example.com:5432/decisioning",
        PUBLIC_BASE_URL="https://decisions.example.com",
        SMS_PROVIDER="twilio",
        ALLOW_SIMULATOR_IN_PRODUCTION="false",
        CELERY_BROKER_URL="redis://redis.example.com:6379/0",
        REDIS_URL="redis://redis.example.com:6379/1",
        RATE_LIMIT_STORAGE_URL="redis://redis.example.com:6379/1",
        SMS_ALLOWED_COUNTRIES="GB,IE",
    )
    return product_env(**(safe | overrides))


def run_python(source: str, *, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run a few lines of Python in a fresh process of the product (e.g. importing settings)."""
    return run_command([sys.executable, "-c", source], env=env)


def run_manage(
    *arguments: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess:
    return run_command([sys.executable, "manage.py", *arguments], env=env, timeout=timeout)


def run_command(
    command: list[str], *, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess:
    return subprocess.run(
        command,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def wait_until(condition: Callable[[], bool], *, timeout: float, interval: float = 0.2) -> bool:
    """Poll `condition` until it holds or `timeout` seconds pass; True when it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return True
        except Exception:
            pass
        time.sleep(interval)
    return False
