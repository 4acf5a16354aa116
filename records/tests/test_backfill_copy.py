"""Back-filled rows go in with COPY: every column must land as the scoring produced it."""

import numpy as np
import pytest

from records.models import PredictionRecord
from records.services import BackfillRow, record_predict, records_backfill_batch
from risk.tests.factories import applicant

pytestmark = pytest.mark.django_db


def test_a_copied_record_holds_what_a_predicted_one_holds(credit_model):
    predicted = record_predict(model_id="credit-default", features=applicant(4), source="api")

    outcome = records_backfill_batch(
        model_id="credit-default",
        rows=[BackfillRow(line=2, external_id="x-4", features=applicant(4))],
    )

    copied = PredictionRecord.objects.get(external_id="x-4")
    stored = PredictionRecord.objects.get(pk=predicted.pk)
    assert outcome.inserted == 1
    assert (copied.risk_score, copied.risk_label, copied.drivers, copied.features) == (
        stored.risk_score,
        stored.risk_label,
        stored.drivers,
        stored.features,
    )
    assert copied.base_logit == stored.base_logit
    assert np.array_equal(np.asarray(copied.embedding), np.asarray(stored.embedding))
    assert (copied.source, copied.model_version, copied.event_id) == ("backfill", 1, None)
    assert copied.created_at is not None
