"""The decisions API end to end against a real HTTP server, with real concurrent requests."""

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.test import Client

from decisions.models import Decision, Event

CSRF_SECRET = "decisionsLiveTestCsrfSecret00001"  # 32 alphanumerics: a valid unmasked token


@pytest.fixture
def http(live_server, staff_user):
    """A requests session logged in as staff (session cookie + CSRF header), like a browser."""
    client = Client()
    client.force_login(staff_user)
    session = requests.Session()
    session.cookies.set("sessionid", client.cookies["sessionid"].value)
    session.cookies.set("csrftoken", CSRF_SECRET)
    session.headers["X-CSRFToken"] = CSRF_SECRET
    session.base_url = live_server.url  # type: ignore[attr-defined]
    yield session
    session.close()


def post(http, path, body=None, **headers):
    return http.post(f"{http.base_url}{path}", json=body, headers=headers, timeout=30)


@pytest.mark.django_db(transaction=True)
def test_it_runs_the_rule_and_event_flow_over_http(http):
    assert post(http, "/api/v1/rules/", {"key": "big", "name": "Big", "event_type": "loan"}).ok
    draft = post(
        http,
        "/api/v1/rules/big/versions/",
        {"condition": "event.amount > 1000", "outcome": "review", "priority": 1},
    )
    assert draft.status_code == 201
    assert post(http, "/api/v1/rules/big/versions/1/publish/").json()["status"] == "published"

    body = {"type": "loan", "payload": {"amount": 5000}}
    first = post(http, "/api/v1/events/", body, **{"Idempotency-Key": "flow-1"})
    again = post(http, "/api/v1/events/", body, **{"Idempotency-Key": "flow-1"})
    other = post(
        http, "/api/v1/events/", {**body, "payload": {"amount": 1}}, **{"Idempotency-Key": "flow-1"}
    )
    decision_id = first.json()["decision"]["id"]
    replay = post(http, f"/api/v1/decisions/{decision_id}/replay/")
    listing = http.get(f"{http.base_url}/api/v1/decisions/?outcome=review", timeout=30)

    assert first.status_code == 201
    assert first.json()["decision"]["outcome"] == "review"
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert other.status_code == 422
    assert other.headers["Content-Type"] == "application/problem+json"
    assert replay.json()["matches"] is True
    assert listing.json()["count"] == 1


@pytest.mark.django_db(transaction=True)
def test_it_makes_exactly_one_decision_for_concurrent_duplicate_requests(http):
    body = {"type": "loan", "payload": {"amount": 7}}
    key = str(uuid.uuid4())
    attempts = 8
    barrier = threading.Barrier(attempts)

    def attempt(_):
        barrier.wait(timeout=30)
        response = post(http, "/api/v1/events/", body, **{"Idempotency-Key": key})
        return response.status_code, response.json()

    with ThreadPoolExecutor(max_workers=attempts) as pool:
        results = list(pool.map(attempt, range(attempts)))

    statuses = sorted(status for status, _ in results)
    decided = [body for status, body in results if status == 201]
    assert set(statuses) <= {201, 409}
    assert decided, statuses
    assert all(body == decided[0] for body in decided)
    assert Event.objects.count() == 1
    assert Decision.objects.count() == 1
    settled = post(http, "/api/v1/events/", body, **{"Idempotency-Key": key})
    assert settled.status_code == 201
    assert settled.json() == decided[0]


@pytest.mark.django_db(transaction=True)
def test_it_decides_concurrent_distinct_requests_independently(http):
    attempts = 6
    barrier = threading.Barrier(attempts)

    def attempt(index):
        barrier.wait(timeout=30)
        return post(
            http,
            "/api/v1/events/",
            {"type": "loan", "payload": {"amount": index}},
            **{"Idempotency-Key": f"distinct-{index}"},
        ).status_code

    with ThreadPoolExecutor(max_workers=attempts) as pool:
        statuses = list(pool.map(attempt, range(attempts)))

    assert statuses == [201] * attempts
    assert Decision.objects.count() == attempts
