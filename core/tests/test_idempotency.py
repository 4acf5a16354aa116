import threading
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone

from core.errors import Conflict, InvalidInput, Unprocessable
from core.idempotency import idempotent_execute, request_fingerprint
from core.models import AuditEntry, IdempotencyRecord


def counting_producer(calls: list[int]):
    def produce():
        calls.append(1)
        return 201, {"n": len(calls)}

    return produce


def test_it_fingerprints_bodies_regardless_of_key_order():
    first = request_fingerprint(method="post", path="/x/", body={"a": 1, "b": [1, 2]})
    second = request_fingerprint(method="POST", path="/x/", body={"b": [1, 2], "a": 1})
    assert first == second
    assert first != request_fingerprint(method="POST", path="/x/", body={"a": 2, "b": [1, 2]})


@pytest.mark.django_db
def test_it_replays_the_stored_response_for_the_same_key_and_body():
    calls: list[int] = []
    first = idempotent_execute(
        scope="s", key="k1", fingerprint="f", produce=counting_producer(calls)
    )
    again = idempotent_execute(
        scope="s", key="k1", fingerprint="f", produce=counting_producer(calls)
    )

    assert (first.status, first.body, first.replayed) == (201, {"n": 1}, False)
    assert (again.status, again.body, again.replayed) == (201, {"n": 1}, True)
    assert len(calls) == 1


@pytest.mark.django_db
def test_it_refuses_the_same_key_with_a_different_body():
    calls: list[int] = []
    idempotent_execute(scope="s", key="k1", fingerprint="f1", produce=counting_producer(calls))

    with pytest.raises(Unprocessable):
        idempotent_execute(scope="s", key="k1", fingerprint="f2", produce=counting_producer(calls))
    assert len(calls) == 1


@pytest.mark.django_db
def test_it_scopes_keys_per_client():
    calls: list[int] = []
    idempotent_execute(scope="a", key="k1", fingerprint="f", produce=counting_producer(calls))
    other = idempotent_execute(
        scope="b", key="k1", fingerprint="f", produce=counting_producer(calls)
    )
    assert other.replayed is False
    assert len(calls) == 2


@pytest.mark.django_db
def test_it_answers_409_while_the_first_request_is_in_flight():
    IdempotencyRecord.objects.create(scope="s", key="k1", fingerprint="f")
    calls: list[int] = []

    with pytest.raises(Conflict):
        idempotent_execute(scope="s", key="k1", fingerprint="f", produce=counting_producer(calls))
    assert calls == []


@pytest.mark.django_db
def test_it_takes_over_a_claim_abandoned_past_its_lease(settings):
    record = IdempotencyRecord.objects.create(scope="s", key="k1", fingerprint="f")
    stale = timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_LEASE_SECONDS + 5)
    IdempotencyRecord.objects.filter(pk=record.pk).update(created_at=stale)
    calls: list[int] = []

    result = idempotent_execute(
        scope="s", key="k1", fingerprint="f", produce=counting_producer(calls)
    )

    assert result.replayed is False
    assert IdempotencyRecord.objects.get(pk=record.pk).state == "completed"


def in_another_session(work):
    """What `work` returns (or raises) on a thread of its own, i.e. another database session."""
    outcome: list = []

    def run():
        try:
            outcome.append(work())
        except Exception as error:  # handed back to the test
            outcome.append(error)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return outcome[0]


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_claim_is_committed_before_the_work_runs():
    seen = []

    def produce():
        seen.append(
            in_another_session(
                lambda: IdempotencyRecord.objects.values_list("state", flat=True).get(key="k1")
            )
        )
        seen.append(
            in_another_session(
                lambda: idempotent_execute(
                    scope="s", key="k1", fingerprint="f", produce=lambda: (200, {})
                )
            )
        )
        return 201, {"done": True}

    result = idempotent_execute(scope="s", key="k1", fingerprint="f", produce=produce)

    assert seen[0] == "in_flight"
    assert isinstance(seen[1], Conflict)
    assert (result.status, result.body) == (201, {"done": True})
    assert IdempotencyRecord.objects.get(key="k1").state == "completed"
    with connection.cursor() as cursor:  # the claim's asynchronous commit was its own only
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"


@pytest.mark.django_db
def test_it_releases_the_claim_and_rolls_back_when_the_work_fails():
    def failing():
        AuditEntry.objects.create(actor_label="t", action="x", target_type="t", target_id="1")
        raise Conflict("nope")

    with pytest.raises(Conflict):
        idempotent_execute(scope="s", key="k1", fingerprint="f", produce=failing)

    assert not IdempotencyRecord.objects.exists()
    assert not AuditEntry.objects.exists()


@pytest.mark.django_db
def test_it_rejects_an_overlong_key():
    with pytest.raises(InvalidInput):
        idempotent_execute(scope="s", key="k" * 300, fingerprint="f", produce=lambda: (200, {}))


@pytest.mark.django_db
@pytest.mark.urls("core.tests.urls")
def test_it_sets_the_replayed_header_over_http(api_client):
    headers = {"HTTP_IDEMPOTENCY_KEY": "note-1"}
    first = api_client.post("/api/test/notes/", {"text": "hello"}, format="json", **headers)
    second = api_client.post("/api/test/notes/", {"text": "hello"}, format="json", **headers)
    changed = api_client.post("/api/test/notes/", {"text": "other"}, format="json", **headers)
    missing = api_client.post("/api/test/notes/", {"text": "hello"}, format="json")

    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first
    assert second.status_code == 201
    assert second["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert changed.status_code == 422
    assert missing.status_code == 400
    assert missing.json()["errors"] == {"Idempotency-Key": ["Required."]}
    assert AuditEntry.objects.filter(action="note.create").count() == 1


@pytest.mark.django_db
def test_it_stores_the_response_as_the_bytes_it_sent():
    """JSONB would hand back {"b": …, "zebra": …, "alpha": …} reordered; text keeps them."""
    body = {"zebra": 1, "alpha": {"yy": [3, 1], "b": None}, "b": "é"}
    first = idempotent_execute(scope="s", key="k1", fingerprint="f", produce=lambda: (201, body))
    again = idempotent_execute(scope="s", key="k1", fingerprint="f", produce=lambda: (201, {}))

    assert again.replayed is True
    assert again.content == first.content
    assert list(again.body) == ["zebra", "alpha", "b"]
    assert IdempotencyRecord.objects.get(key="k1").response_body == first.content.decode()
