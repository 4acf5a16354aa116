"""Batch validation and scoring of back-fill rows give what the row path gives, exactly."""

import random

import numpy as np
import pytest

from records.batch_scoring import rows_prepare, rows_validate
from risk.selectors import (
    InvalidFeatures,
    features_validate,
    model_score_rows,
    model_version_get,
    model_version_loaded,
)
from risk.tests.factories import applicant

pytestmark = pytest.mark.django_db


def _as_text(features):
    return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in features.items()}


def _damaged(row, rng, schema):
    """A copy of a text row with one cell made wrong in one of the ways a CSV gets wrong."""
    feature = rng.choice(schema)
    damaged = dict(row)
    damaged[feature["name"]] = rng.choice(
        ["", "  ", "abc", "1.5", "nan", "inf", "-1e400", "99999999999999999999", " 7 ", "TRUE"]
    )
    if rng.random() < 0.1:
        damaged["unknown_column"] = "1"
    return damaged


def test_each_row_is_typed_or_refused_as_features_validate_does(credit_model):
    schema = model_version_get(key="credit-default").feature_schema
    rng = random.Random(5)
    rows = [_as_text(applicant(index)) for index in range(60)]
    rows += [_damaged(row, rng, schema) for row in rows * 4]

    expected = []
    for row in rows:
        try:
            expected.append(features_validate(schema, row, coerce_strings=True))
        except InvalidFeatures as error:
            expected.append(error.errors)
    results = rows_validate(schema, rows)
    got = [result.errors if isinstance(result, InvalidFeatures) else result for result in results]

    assert got == expected
    refused = sum(isinstance(result, InvalidFeatures) for result in results)
    assert 100 < refused < len(rows) - 60  # both paths of the column parser were taken


def test_scores_drivers_and_embeddings_are_the_row_paths_to_the_bit(credit_model):
    version = model_version_get(key="credit-default")
    rows = [_as_text(applicant(index)) for index in range(200)]
    rows[7]["duration_months"] = "not a number"

    prepared = rows_prepare(model_version_loaded(model_version=version), rows)
    scored = model_score_rows(model_version=version, rows=rows, coerce_strings=True)

    assert isinstance(prepared[7], InvalidFeatures)
    assert prepared[7].errors == scored[7].errors
    for batch, single in zip(prepared, scored, strict=True):
        if isinstance(single, InvalidFeatures):
            continue
        assert batch.features == single.features
        assert batch.score == single.score
        assert batch.label == single.label
        assert batch.base_logit == single.base_logit
        assert batch.drivers == single.drivers_as_json()
        assert np.array_equal(batch.embedding, single.embedding)
        assert (batch.model_key, batch.model_version) == (version.model.key, version.version)
