"""Two writers: batches committed on two connections at once keep every back-fill guarantee.

These tests commit for real (`transaction=True`): a writer thread has its own connection, which
a test's surrounding transaction would hide from it.
"""

import csv
import threading
import time
from pathlib import Path

import pytest
from django.db import connection

import records.backfill
from records.backfill import backfill_csv
from records.models import PredictionRecord
from records.services import BackfillRow, backfill_scorer, records_backfill_prepared
from risk.tests.factories import applicant

pytestmark = pytest.mark.django_db(transaction=True)


def _write_csv(path: Path, count: int, *, bad_lines: frozenset[int] = frozenset()) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["external_id", *applicant(0)])
        for index in range(count):
            row = applicant(index % 50, age="old") if index + 2 in bad_lines else applicant(index)
            values = [str(v).lower() if isinstance(v, bool) else v for v in row.values()]
            writer.writerow([f"loan-{index}", *values])


def _import(tmp_path: Path, source: Path, **options: int):
    return backfill_csv(
        path=source,
        model_id="credit-default",
        report_path=tmp_path / "rejected.csv",
        batch_size=options.get("batch_size", 4),
        max_row_bytes=16 * 1024,
        writers=options.get("writers", 2),
    )


def _as_text(features: dict) -> dict[str, str]:
    return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in features.items()}


def _client_connections(*, settled_at: int | None = None) -> int:
    """Client backends on this database; with `settled_at`, waits up to 2 s for that count (a
    backend leaves pg_stat_activity shortly after its client closed the connection)."""
    for _attempt in range(40):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND backend_type = 'client backend'"
            )
            count = int(cursor.fetchone()[0])
        if settled_at is None or count == settled_at:
            break
        time.sleep(0.05)
    return count


def test_two_writers_store_every_row_once_and_report_rejections_in_file_order(
    credit_model, tmp_path, monkeypatch
):
    source = tmp_path / "history.csv"
    _write_csv(source, 30, bad_lines=frozenset({5, 17, 29}))
    writing, most_at_once, lock = set(), [0], threading.Lock()
    write = records.backfill.records_backfill_prepared

    def counted(**kwargs):
        with lock:
            writing.add(threading.get_ident())
            most_at_once[0] = max(most_at_once[0], len(writing))
        try:
            return write(**kwargs)
        finally:
            with lock:
                writing.discard(threading.get_ident())

    monkeypatch.setattr(records.backfill, "records_backfill_prepared", counted)
    before = _client_connections()

    report = _import(tmp_path, source)

    stored = list(PredictionRecord.objects.values_list("external_id", flat=True))
    assert (report.inserted, report.skipped, report.rejected, report.rows) == (27, 0, 3, 30)
    assert sorted(stored) == sorted(f"loan-{i}" for i in range(30) if i + 2 not in {5, 17, 29})
    assert len(stored) == len(set(stored))
    rejected = list(csv.reader((tmp_path / "rejected.csv").open()))[1:]
    assert [row[:2] for row in rejected] == [["5", "age"], ["17", "age"], ["29", "age"]]
    assert most_at_once[0] <= 2  # never more batches in flight than writers: memory stays flat
    assert _client_connections(settled_at=before) == before  # each writer closed its connection


def test_a_failing_batch_keeps_the_others_commits_and_a_re_run_resumes(
    credit_model, tmp_path, monkeypatch
):
    source = tmp_path / "history.csv"
    _write_csv(source, 24)
    write = records.backfill.records_backfill_prepared

    def failing(**kwargs):
        if any(row.external_id == "loan-13" for row in kwargs["rows"]):
            raise RuntimeError("the database went away")
        return write(**kwargs)

    monkeypatch.setattr(records.backfill, "records_backfill_prepared", failing)
    with pytest.raises(RuntimeError, match="went away"):
        _import(tmp_path, source)

    kept = set(PredictionRecord.objects.values_list("external_id", flat=True))
    # Batches 0 to 2 (loan-0 .. loan-11) were written before the failing batch 3; the batch
    # written beside it may have committed too; the failing batch committed nothing.
    assert {f"loan-{i}" for i in range(12)} <= kept
    assert not kept & {f"loan-{i}" for i in range(12, 16)}
    monkeypatch.setattr(records.backfill, "records_backfill_prepared", write)

    again = _import(tmp_path, source)

    stored = list(PredictionRecord.objects.values_list("external_id", flat=True))
    assert sorted(stored) == sorted(f"loan-{i}" for i in range(24))
    assert (again.inserted, again.skipped) == (24 - len(kept), len(kept))


def test_two_runs_writing_the_same_rows_in_opposite_orders_both_succeed(credit_model):
    prepare = backfill_scorer(model_id="credit-default")
    rows = [
        BackfillRow(line=i + 2, external_id=f"x-{i}", features=applicant(i)) for i in range(300)
    ]
    prepared = prepare([_as_text(row.features) for row in rows])
    orders = [list(range(300)), list(reversed(range(300)))]
    start, outcomes, errors = threading.Barrier(2), [], []

    def run(order: list[int]) -> None:
        try:
            start.wait()
            outcomes.append(
                records_backfill_prepared(
                    model_id="credit-default",
                    rows=[rows[i] for i in order],
                    prepared=[prepared[i] for i in order],
                )
            )
        except Exception as error:  # a deadlock would fail one of them
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(order,)) for order in orders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sorted((o.inserted + o.skipped) for o in outcomes) == [300, 300]
    assert sum(o.inserted for o in outcomes) == 300
    assert PredictionRecord.objects.count() == 300
