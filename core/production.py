"""What production refuses to start with. Read by config/settings.py before Django is set up,
so it imports nothing from Django's app registry."""

from collections.abc import Mapping
from typing import Any

# The development default in config/settings.py; a deployment that forgot SECRET_KEY gets it.
DEVELOPMENT_SECRET_KEY = "dev-only-insecure-key-never-used-in-production"
# The thresholds of Django's own deploy check (security.W009), refused here instead of warned.
SECRET_KEY_MIN_LENGTH = 50
SECRET_KEY_MIN_UNIQUE_CHARACTERS = 5


def secret_key_weakness(secret_key: str) -> str | None:
    """Why a SECRET_KEY is too weak to sign sessions and tokens with, or None."""
    if secret_key == DEVELOPMENT_SECRET_KEY:
        return "SECRET_KEY is the development default"
    if secret_key.startswith("django-insecure"):
        return "SECRET_KEY starts with 'django-insecure' (a startproject placeholder)"
    if len(secret_key) < SECRET_KEY_MIN_LENGTH:
        return f"SECRET_KEY is shorter than {SECRET_KEY_MIN_LENGTH} characters"
    if len(set(secret_key)) < SECRET_KEY_MIN_UNIQUE_CHARACTERS:
        return f"SECRET_KEY has fewer than {SECRET_KEY_MIN_UNIQUE_CHARACTERS} unique characters"
    return None


def production_problems(settings: Mapping[str, Any]) -> list[str]:
    """Every reason these settings (the settings module's names) are unsafe for real users."""
    problems = []
    if settings["DEBUG"]:
        problems.append("DEBUG is on (it shows settings and stack traces to anyone): DEBUG=false")
    weakness = secret_key_weakness(settings["SECRET_KEY"])
    if weakness:
        problems.append(f"{weakness}: use at least 50 random characters")
    if settings["SMS_PROVIDER"] == "simulator" and not settings["ALLOW_SIMULATOR_IN_PRODUCTION"]:
        problems.append(
            "SMS_PROVIDER is the simulator (no message would reach anyone): "
            "SMS_PROVIDER=twilio, or ALLOW_SIMULATOR_IN_PRODUCTION=true for a rehearsal"
        )
    if not settings["PUBLIC_BASE_URL"].startswith("https://"):
        problems.append(
            "PUBLIC_BASE_URL is not HTTPS (webhook signatures and callbacks would travel in "
            "clear): PUBLIC_BASE_URL=https://..."
        )
    if not settings["SMS_ALLOWED_COUNTRIES"]:
        problems.append(
            "SMS_ALLOWED_COUNTRIES is empty (SMS pumping could reach any country): "
            "SMS_ALLOWED_COUNTRIES=GB,DE,US (ISO regions)"
        )
    if settings["CELERY_BROKER_URL"].startswith("filesystem"):
        problems.append(
            "CELERY_BROKER_URL is the filesystem broker (one machine only): "
            "CELERY_BROKER_URL=redis://... or amqp://..."
        )
    if settings["RATE_LIMIT_STORAGE_URL"].startswith("memory") or not settings["REDIS_URL"]:
        problems.append(
            "rate limits and throttles would be counted per process in memory (each worker "
            "would allow the full rate): set REDIS_URL (and RATE_LIMIT_STORAGE_URL, if set, "
            "to redis://...)"
        )
    return problems


def production_refusal(settings: Mapping[str, Any]) -> str | None:
    """The message ImproperlyConfigured carries when production must not start, or None."""
    problems = production_problems(settings)
    if not problems:
        return None
    listed = "\n".join(f"  - {problem}" for problem in problems)
    return f"DJANGO_ENV=production refuses to start:\n{listed}"
