import csv
import io

import pytest
from django.core.management import CommandError, call_command

from records.models import PredictionRecord
from risk.tests.factories import applicant


def _write_csv(path, rows, *, header=None, external_ids=False):
    header = header or list(applicant(0))
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow((["external_id"] if external_ids else []) + header)
        for index, row in enumerate(rows):
            values = [str(v).lower() if isinstance(v, bool) else v for v in row.values()]
            writer.writerow(([f"loan-{index}"] if external_ids else []) + values)


def _backfill(path, **options):
    out = io.StringIO()
    call_command("backfill_records", str(path), model="credit-default", stdout=out, **options)
    return out.getvalue()


def test_it_imports_in_batches_and_reports_rejected_rows_by_line(credit_model, tmp_path):
    rows = [applicant(i) for i in range(12)]
    rows[3] = applicant(3, age="old")
    rows[7] = applicant(7, purpose="boat", credit_amount=-5)
    source = tmp_path / "history.csv"
    _write_csv(source, rows)
    with source.open("a") as handle:
        handle.write("1,2,3\n")

    output = _backfill(source, batch_size=5)

    assert PredictionRecord.objects.filter(source="backfill").count() == 10
    assert "Back-filling 13 rows" in output
    assert "13/13" in output  # the progress bar reached the end
    assert "Inserted 10, skipped 0 already imported, rejected 3." in output
    report = list(csv.reader((tmp_path / "history.csv.rejected.csv").open()))
    assert report[0] == ["line", "field", "reason"]
    assert [row[:2] for row in report[1:]] == [
        ["5", "age"],
        ["9", "purpose"],
        ["9", "credit_amount"],
        ["14", "__row__"],
    ]
    assert report[1][2] == "must be an integer"
    assert report[3][2] == "must be ≥ 1"
    assert report[4][2] == "has 3 columns, the header has 20"


def test_a_second_run_imports_nothing_twice(credit_model, tmp_path):
    source = tmp_path / "history.csv"
    _write_csv(source, [applicant(i) for i in range(6)])
    _backfill(source)

    output = _backfill(source)

    assert "Inserted 0, skipped 6 already imported, rejected 0." in output
    assert PredictionRecord.objects.count() == 6


def test_an_interrupted_run_resumes_where_it_stopped(credit_model, tmp_path):
    rows = [applicant(i) for i in range(9)]
    partial, full = tmp_path / "partial.csv", tmp_path / "full.csv"
    # The first run "died" after committing the first batches: the same rows, already stored.
    _write_csv(partial, rows[:4], external_ids=True)
    _write_csv(full, rows, external_ids=True)
    _backfill(partial, batch_size=2)

    output = _backfill(full, batch_size=2)

    assert "Inserted 5, skipped 4 already imported, rejected 0." in output
    assert sorted(PredictionRecord.objects.values_list("external_id", flat=True)) == [
        f"loan-{i}" for i in range(9)
    ]


def test_the_report_path_can_be_chosen_and_unknown_models_are_refused(credit_model, tmp_path):
    source = tmp_path / "history.csv"
    _write_csv(source, [applicant(0, job="astronaut")])

    _backfill(source, report=str(tmp_path / "bad.csv"))
    with pytest.raises(CommandError, match="No model 'churn'"):
        call_command("backfill_records", str(source), model="churn", stdout=io.StringIO())

    assert list(csv.reader((tmp_path / "bad.csv").open()))[1][:2] == ["2", "job"]
    assert not PredictionRecord.objects.exists()


@pytest.mark.parametrize("option", [{"writers": 0}, {"writers": 9}, {"batch_size": 0}])
def test_it_refuses_writers_and_batch_sizes_out_of_range(credit_model, tmp_path, option):
    source = tmp_path / "history.csv"
    _write_csv(source, [applicant(0)])

    with pytest.raises(CommandError, match="must be from 1 to"):
        _backfill(source, **option)

    assert not PredictionRecord.objects.exists()


def test_a_header_that_does_not_fit_the_model_is_refused_before_any_row(credit_model, tmp_path):
    source = tmp_path / "history.csv"
    header = [name for name in applicant(0) if name != "age"] + ["colour"]
    _write_csv(source, [], header=header)

    with pytest.raises(CommandError) as caught:
        _backfill(source)

    assert str(caught.value) == (
        "The CSV header does not match the model's features. "
        "unknown columns: colour; missing columns: age"
    )
    assert not PredictionRecord.objects.exists()


def test_load_demo_records_fills_an_empty_store_once(credit_model):
    out = io.StringIO()

    call_command("load_demo_records", "--count", "30", stdout=out)
    call_command("load_demo_records", "--count", "30", stdout=out)

    assert PredictionRecord.objects.filter(source="backfill").count() == 30
    assert "Loaded 30 demo records." in out.getvalue()
    assert "Records exist already; nothing to do." in out.getvalue()
