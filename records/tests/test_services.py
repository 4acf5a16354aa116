import math

import pytest

from core.errors import InvalidInput
from records.models import PredictionRecord
from records.services import BackfillRow, record_predict, records_backfill_batch
from risk.exceptions import InvalidFeatures, ModelNotFound
from risk.selectors import model_score
from risk.tests.factories import applicant


def test_it_scores_and_stores_a_prediction(credit_model):
    features = applicant(1)

    record = record_predict(
        model_id="credit-default", features=features, source="decision", event_id=77
    )

    stored = PredictionRecord.objects.get(pk=record.pk)
    expected = model_score(model_key="credit-default", features=features)
    assert stored.features == features
    assert stored.risk_score == pytest.approx(expected.score, abs=1e-12)
    assert stored.risk_label == expected.label
    assert stored.drivers == expected.drivers_as_json()
    assert stored.base_logit == pytest.approx(expected.base_logit, abs=1e-12)
    logit = stored.base_logit + sum(d["contribution"] for d in stored.drivers)
    assert 1 / (1 + math.exp(-logit)) == pytest.approx(stored.risk_score, abs=1e-12)
    assert (stored.model_id, stored.model_version, stored.source, stored.event_id) == (
        "credit-default",
        1,
        "decision",
        77,
    )
    assert len(stored.embedding) == 384


def test_invalid_features_store_nothing(credit_model):
    with pytest.raises(InvalidFeatures) as caught:
        record_predict(
            model_id="credit-default", features=applicant(0, age=121, job="pirate"), source="api"
        )

    assert set(caught.value.errors) == {"features.age", "features.job"}
    assert not PredictionRecord.objects.exists()


def test_an_unknown_source_or_model_stores_nothing(credit_model):
    with pytest.raises(InvalidInput) as caught:
        record_predict(model_id="credit-default", features=applicant(0), source="email")
    with pytest.raises(ModelNotFound):
        record_predict(model_id="churn", features=applicant(0), source="api")

    assert caught.value.errors == {"source": ["one of api, form, decision, backfill"]}
    assert not PredictionRecord.objects.exists()


def test_a_form_prediction_accepts_text_values(credit_model):
    text = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in applicant(2).items()}

    record = record_predict(model_id="credit-default", features=text, source="form")

    assert record.features == applicant(2)


def test_an_api_prediction_refuses_text_for_numbers(credit_model):
    with pytest.raises(InvalidFeatures) as caught:
        record_predict(model_id="credit-default", features=applicant(0, age="33"), source="api")

    assert caught.value.errors == {"features.age": ["must be an integer"]}


def test_a_backfill_batch_skips_imported_rows_and_reports_bad_ones(credit_model):
    rows = [
        BackfillRow(line=2, external_id="a", features=applicant(0)),
        BackfillRow(line=3, external_id="b", features=applicant(1, age="x")),
        BackfillRow(line=4, external_id="c", features=applicant(2)),
        BackfillRow(line=5, external_id="c", features=applicant(2)),
    ]

    first = records_backfill_batch(model_id="credit-default", rows=rows)
    again = records_backfill_batch(model_id="credit-default", rows=rows)

    assert (first.inserted, first.skipped, first.rejected) == (
        2,
        1,
        [(3, {"features.age": ["must be an integer"]})],
    )
    assert (again.inserted, again.skipped) == (0, 3)
    assert sorted(PredictionRecord.objects.values_list("external_id", flat=True)) == ["a", "c"]
    assert set(PredictionRecord.objects.values_list("source", flat=True)) == {"backfill"}
