"""scripts/backup.py and scripts/restore.py: a populated database, backed up and restored into
a fresh database, has the same rows, and a decision replays there exactly as it does here."""

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from django.db import connections
from psycopg import sql

from campaigns import services as campaigns_services
from campaigns.tests.factories import contact_factory
from core.db_router import reads_from
from decisions import engine
from decisions.models import Decision
from decisions.replay_selectors import decision_replay
from decisions.tests.factories import register_event, rule_with_version
from tests.support.celery_worker import database_url
from tests.support.private_broker import private_broker

ROOT = Path(__file__).resolve().parents[1]
RESTORED = "restored"
__all__ = ["private_broker"]  # the fixture


def run_script(name: str, *arguments: str) -> str:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / name), *arguments],
        env={**os.environ, "DATABASE_URL": database_url()},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def row_counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as connection:
        tables = [
            row[0]
            for row in connection.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            )
        ]
        return {
            table: connection.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
            ).fetchone()[0]
            for table in tables
        }


@pytest.fixture(scope="module")
def restored_alias(django_db_setup) -> str:
    """A database not created yet on the test server, known to Django as RESTORED before the
    test starts (so the test may query it); its name."""
    name = f"restore_check_{uuid.uuid4().hex[:8]}"
    connections.settings[RESTORED] = {**connections["default"].settings_dict, "NAME": name}
    return name


@pytest.fixture
def fresh_database(restored_alias) -> Iterator[str]:
    """The URL of the RESTORED database. Afterwards it is dropped and forgotten, before the
    test case would flush it (it is about to disappear: flushing it would be wasted time)."""
    source = database_url()
    test_name = connections["default"].settings_dict["NAME"]
    yield source.replace(f"/{test_name}", f"/{restored_alias}", 1)
    connections[RESTORED].close()
    del connections[RESTORED]
    del connections.settings[RESTORED]
    with psycopg.connect(
        source.replace(f"/{test_name}", "/postgres", 1), autocommit=True
    ) as server:
        server.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(restored_alias)
            )
        )


@pytest.mark.django_db(transaction=True, databases=["default", RESTORED])
def test_a_restored_backup_has_every_row_and_replays_a_decision(
    tmp_path, fresh_database, private_broker
):
    url = fresh_database
    private_broker("filesystem://")  # the message's send task goes to this test's own folder
    rule_with_version(condition="event.amount > 1000", outcome="review")
    decision = register_event({"amount": 2500, "country": "GB"})
    register_event({"amount": 10})
    contact = contact_factory(phone="+14155552671")
    campaigns_services.transactional_message_send(
        phone=contact.phone, template="Hi", context={}, reference="backup:1"
    )
    backup = tmp_path / "decisioning.dump"

    run_script("backup.py", "--output", str(backup))
    run_script("restore.py", str(backup), "--target-url", url, "--create")

    source_counts = row_counts(database_url())
    assert row_counts(url) == source_counts
    assert source_counts["decisions_decision"] == 2
    assert source_counts["campaigns_message"] == 1
    # The restored database, read through Django: the decision replays to the same result.
    with reads_from(RESTORED):
        restored = Decision.objects.select_related("event").get(pk=decision.pk)
        replayed_there = decision_replay(decision=restored)
    replayed_here = decision_replay(decision=decision)
    assert restored._state.db == RESTORED
    assert (replayed_there["matches"], replayed_there["differences"]) == (True, [])
    assert replayed_there["stored"] == replayed_here["stored"]
    assert replayed_there["stored"]["outcome"] == "review"
    assert engine.comparable(replayed_there["replayed"]["trace"]) == engine.comparable(
        replayed_here["replayed"]["trace"]
    )
