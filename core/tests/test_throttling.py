"""A caller over its rate gets 429 problem details with Retry-After, and others are unaffected."""

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from core.services import api_key_create

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def tight_rates(settings):
    cache.clear()
    settings.API_THROTTLE_RATES = {"client": "3/min", "anonymous": "2/min"}


def key_client(name: str) -> APIClient:
    _key, raw = api_key_create(name=name, scopes=["all"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    return client


def test_a_key_over_its_rate_gets_429_with_retry_after():
    client = key_client("busy")

    statuses = [client.get("/api/v1/whoami/").status_code for _ in range(3)]
    refused = client.get("/api/v1/whoami/")

    assert statuses == [200, 200, 200]
    assert refused.status_code == 429
    assert refused["Content-Type"] == "application/problem+json"
    assert refused.json()["status"] == 429
    assert 0 < int(refused["Retry-After"]) <= 60


def test_one_key_over_its_rate_does_not_throttle_another():
    busy, quiet = key_client("busy"), key_client("quiet")
    for _ in range(4):
        busy.get("/api/v1/whoami/")

    assert quiet.get("/api/v1/whoami/").status_code == 200


def test_anonymous_callers_are_throttled_per_address():
    anonymous = APIClient()
    statuses = [anonymous.get("/api/v1/whoami/").status_code for _ in range(3)]

    assert statuses == [401, 401, 429]


def test_the_count_starts_again_when_the_window_ends_and_retry_after_says_when(monkeypatch):
    from core.throttling import ClientRateThrottle

    client = key_client("windowed")
    clock = [600.0 * 60 + 20.0]  # 20 s into a one-minute window
    monkeypatch.setattr(ClientRateThrottle, "timer", lambda self: clock[0])

    statuses = [client.get("/api/v1/whoami/").status_code for _ in range(4)]
    retry_after = client.get("/api/v1/whoami/")["Retry-After"]
    clock[0] += 40.0  # the next window
    after = client.get("/api/v1/whoami/").status_code

    assert statuses == [200, 200, 200, 429]
    assert retry_after == "40"
    assert after == 200
