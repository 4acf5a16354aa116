"""Idempotency over real HTTP: concurrent retries of one request against a live server."""

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from core.models import AuditEntry


@pytest.mark.django_db(transaction=True)
@pytest.mark.urls("core.tests.urls")
def test_it_runs_the_work_once_under_concurrent_retries(live_server, api_key):
    """Eight clients send the same request at once: one does the work, none duplicates it."""
    url = f"{live_server.url}/api/test/notes/"
    headers = {"Authorization": f"Api-Key {api_key[1]}", "Idempotency-Key": "race-1"}

    def send(_: int) -> requests.Response:
        return requests.post(url, json={"text": "raced"}, headers=headers, timeout=10)

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(send, range(8)))

    statuses = sorted(response.status_code for response in responses)
    assert set(statuses) <= {201, 409}
    assert 201 in statuses
    created = [response.json() for response in responses if response.status_code == 201]
    assert all(body == created[0] for body in created)
    assert AuditEntry.objects.filter(action="note.create", target_id="raced").count() == 1
