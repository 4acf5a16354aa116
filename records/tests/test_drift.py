"""Drift: each production version's window of predictions against its training reference,
PSI per feature and for the score, flagged past 0.1 (watch) and 0.25 (act)."""

import random
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from core.tests.identities import person, session_client
from records import selectors, services
from records.models import DriftMeasurement, PredictionRecord
from risk.drift import SCORE
from risk.models import ModelVersion
from risk.selectors import model_score_rows
from risk.tests.factories import applicant

pytestmark = pytest.mark.django_db
WINDOW = 200


def predictions(model_version: ModelVersion, *, shifted: bool, count: int = WINDOW) -> None:
    """WINDOW real applicants scored as live API predictions, optionally older and borrowing
    four times as much for twice as long. A random sample: the data set's file is ordered
    (its first 310 rows are every divorced or married woman), which PSI rightly flags."""
    rows = []
    for index in random.Random(7).sample(range(1000), count):
        row = applicant(index)
        if shifted:
            row |= {
                "age": min(row["age"] + 25, 120),
                "credit_amount": row["credit_amount"] * 4,
                "duration_months": min(row["duration_months"] * 2, 120),
            }
        rows.append(row)
    PredictionRecord.objects.bulk_create(
        PredictionRecord(
            model_id="credit-default",
            model_version=model_version.version,
            features=scoring.features,
            embedding=scoring.embedding,
            risk_score=scoring.score,
            risk_label=scoring.label,
            drivers=scoring.drivers_as_json(),
            source=PredictionRecord.Source.API,
        )
        for scoring in model_score_rows(model_version=model_version, rows=rows)
    )


def latest_levels() -> dict[str, float]:
    return {row.feature: row.psi for row in DriftMeasurement.objects.all()}


def test_drift_on_shifted_data_is_flagged(credit_model):
    predictions(credit_model, shifted=True)

    [outcome] = services.drift_measure()

    psi = latest_levels()
    assert outcome.sample_size == WINDOW
    assert psi["credit_amount"] >= 0.25
    assert psi["age"] >= 0.25
    assert psi["duration_months"] >= 0.25
    assert psi[SCORE] >= 0.1  # the model sees riskier applicants
    assert psi["purpose"] < 0.1  # untouched features stay quiet
    assert selectors.drift_worst() == {("credit-default", credit_model.version): max(psi.values())}


def test_drift_on_unshifted_data_is_not_flagged(credit_model):
    predictions(credit_model, shifted=False)

    services.drift_measure()

    psi = latest_levels()
    assert len(psi) == len(credit_model.feature_schema) + 1
    assert max(psi.values()) < 0.1, sorted(psi.items(), key=lambda item: -item[1])[:3]


def test_a_version_registered_without_a_reference_gets_one_from_its_training_data(credit_model):
    ModelVersion.objects.filter(pk=credit_model.pk).update(reference_distribution={})
    predictions(credit_model, shifted=False)

    [outcome] = services.drift_measure()

    credit_model.refresh_from_db()
    assert outcome.skipped == ""
    assert credit_model.reference_distribution["rows"] == 1000
    assert set(credit_model.reference_distribution["features"]) == {
        feature["name"] for feature in credit_model.feature_schema
    }


def test_a_window_too_small_or_too_old_is_not_measured(credit_model):
    predictions(credit_model, shifted=True, count=20)
    PredictionRecord.objects.update(created_at=timezone.now() - timedelta(days=30))

    [outcome] = services.drift_measure()

    assert outcome.skipped == "0 records in the window"
    assert not DriftMeasurement.objects.exists()


def test_the_command_measures_and_the_page_charts_and_marks(credit_model, capsys):
    predictions(credit_model, shifted=True)

    call_command("measure_drift", "--days", "2")
    page = session_client(person("analyst")).get("/drift/")
    refused = session_client(person("campaign manager")).get("/drift/")

    out = capsys.readouterr().out
    assert f"credit-default v{credit_model.version}: 21 measurements over {WINDOW}" in out
    assert "(act)" in out
    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-testid="drift-chart"' in html
    assert html.count('data-level="act"') >= 3
    assert 'data-level="ok"' in html
    assert refused.status_code == 403
