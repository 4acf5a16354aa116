import io

import numpy as np
import pandas as pd
import pytest
import skops.io
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

from risk.exceptions import InvalidArtifact, InvalidFeatures, ModelNotFound
from risk.models import ModelVersion
from risk.scoring import artifact_load
from risk.selectors import model_score, model_score_rows, model_version_loaded
from risk.services import model_version_promote
from risk.tests.factories import applicant, credit_model_register, trained_credit_model
from risk.training import german_credit_frame


def double(values):
    return values * 2


def test_drivers_plus_base_logit_reproduce_the_logit_exactly(credit_model):
    loaded = model_version_loaded(model_version=credit_model)
    # An independent load of the artifact is the reference: sklearn's own decision function.
    reference = skops.io.loads(trained_credit_model().artifact)
    frame, _target = german_credit_frame()
    rows = frame.to_dict(orient="records")
    model_input = frame.astype({"telephone": "int64", "foreign_worker": "int64"})
    expected_logits = reference.decision_function(model_input)
    expected_scores = reference.predict_proba(model_input)[:, 1]
    classifier = reference.named_steps["classifier"]

    scorings = loaded.score_many(rows)

    for scoring, logit, score in zip(scorings, expected_logits, expected_scores, strict=True):
        contributions = sum(driver.contribution for driver in scoring.drivers)
        assert abs(contributions + scoring.base_logit - logit) < 1e-9
        assert abs(scoring.logit - logit) < 1e-9
        assert abs(scoring.score - score) < 1e-12
        assert len(scoring.drivers) == 20
    baseline = np.asarray(credit_model.encoded_baseline)
    assert scorings[0].base_logit == pytest.approx(
        classifier.intercept_[0] + classifier.coef_[0] @ baseline, abs=1e-12
    )


def test_the_numpy_encoding_equals_sklearns(credit_model):
    loaded = model_version_loaded(model_version=credit_model)
    frame, _target = german_credit_frame()
    rows = frame.to_dict(orient="records")

    assert loaded.fast_plan is not None
    assert np.array_equal(loaded.encode(rows), loaded.encode_with_sklearn(rows))


def test_drivers_are_sorted_by_absolute_contribution(credit_model):
    scoring = model_score(model_key="credit-default", features=applicant(3))

    magnitudes = [abs(driver.contribution) for driver in scoring.drivers]
    assert magnitudes == sorted(magnitudes, reverse=True)
    assert {driver.feature for driver in scoring.drivers} == set(applicant(3))


def test_it_labels_scores_by_the_thresholds(credit_model):
    loaded = model_version_loaded(model_version=credit_model)

    assert [loaded.label_for(s) for s in (0.0, 0.299, 0.3, 0.599, 0.6, 1.0)] == [
        "low",
        "low",
        "medium",
        "medium",
        "high",
        "high",
    ]


def test_the_embedding_is_the_unit_encoded_vector_padded_to_384(credit_model):
    scoring = model_score(model_key="credit-default", features=applicant(0))
    width = credit_model.embedding_source_dimensions

    assert scoring.embedding.shape == (384,)
    assert np.linalg.norm(scoring.embedding) == pytest.approx(1.0, abs=1e-6)
    assert not scoring.embedding[width:].any()
    encoded = model_version_loaded(model_version=credit_model).encode([applicant(0)])[0]
    assert np.allclose(scoring.embedding[:width], encoded / np.linalg.norm(encoded), atol=1e-6)


def test_it_scores_batches_and_reports_bad_rows_in_place(credit_model):
    rows = [applicant(0), applicant(1, age=7), applicant(2)]

    results = model_score_rows(model_version=credit_model, rows=rows)

    assert [type(result).__name__ for result in results] == [
        "Scoring",
        "InvalidFeatures",
        "Scoring",
    ]
    assert isinstance(results[1], InvalidFeatures)
    assert results[1].errors == {"features.age": ["must be ≥ 18"]}
    assert results[2].score == model_score(model_key="credit-default", features=rows[2]).score


def test_loaded_models_are_cached_per_process_by_version(credit_model, django_assert_num_queries):
    first = model_version_loaded(model_version=credit_model)

    with django_assert_num_queries(0):
        second = model_version_loaded(model_version=credit_model)

    assert second is first


def test_it_refuses_an_artifact_with_untrusted_types():
    frame = pd.DataFrame({"amount": [1.0, 2.0, 3.0, 4.0], "kind": ["a", "b", "a", "b"]})
    pipeline = Pipeline(
        [
            (
                "preprocess",
                ColumnTransformer(
                    [
                        ("amount", FunctionTransformer(double), ["amount"]),
                        ("kind", OneHotEncoder(), ["kind"]),
                    ]
                ),
            ),
            ("classifier", LogisticRegression()),
        ]
    ).fit(frame, [0, 1, 0, 1])
    buffer = io.BytesIO()
    skops.io.dump(pipeline, buffer)

    with pytest.raises(InvalidArtifact) as caught:
        artifact_load(buffer.getvalue())

    assert "not trusted" in caught.value.detail
    assert "risk.tests.test_scoring.double" in caught.value.detail


def test_it_refuses_bytes_that_are_not_a_skops_file():
    with pytest.raises(InvalidArtifact) as caught:
        artifact_load(b"\x80\x04pickle")

    assert caught.value.detail.startswith("Not a readable skops file")


def test_scoring_a_model_without_production_version_names_the_problem(db):
    from risk.tests.factories import credit_model_register

    credit_model_register(promote=False)

    with pytest.raises(ModelNotFound) as caught:
        model_score(model_key="credit-default", features=applicant(0))

    assert caught.value.detail == "Model 'credit-default' has no production version."
    assert ModelVersion.objects.get().stage == ModelVersion.Stage.STAGING


@given(data=st.data())
@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_drivers_stay_exact_for_any_valid_applicant(credit_model, data):
    loaded = model_version_loaded(model_version=credit_model)
    reference = skops.io.loads(trained_credit_model().artifact)
    features = {}
    for feature in credit_model.feature_schema:
        if feature["type"] == "category":
            features[feature["name"]] = data.draw(st.sampled_from(feature["values"]))
        elif feature["type"] == "boolean":
            features[feature["name"]] = data.draw(st.booleans())
        else:
            features[feature["name"]] = data.draw(
                st.integers(int(feature["minimum"]), int(feature["maximum"]))
            )

    [scoring] = loaded.score_many([features])

    frame = pd.DataFrame([features]).astype({"telephone": "int64", "foreign_worker": "int64"})
    expected = reference.decision_function(frame[[f["name"] for f in credit_model.feature_schema]])[
        0
    ]
    contributions = sum(driver.contribution for driver in scoring.drivers)
    assert abs(contributions + scoring.base_logit - expected) <= 1e-9 * max(1.0, abs(expected))


def test_a_batch_scores_each_row_exactly_as_scoring_it_alone(credit_model):
    loaded = model_version_loaded(model_version=credit_model)
    rows = [applicant(index) for index in range(64)]

    batch = loaded.score_many(rows)

    assert [scoring.score for scoring in batch] == [
        loaded.score_many([row])[0].score for row in rows
    ]


def test_scoring_reads_the_production_version_once_until_a_model_changes(
    db, django_assert_num_queries
):
    first = credit_model_register(promote=True)
    assert model_score(model_key="credit-default", features=applicant(1)).model_version == (
        first.version
    )
    with django_assert_num_queries(1):  # the models generation, nothing else
        model_score(model_key="credit-default", features=applicant(1))

    second = credit_model_register(promote=True)
    after_promotion = model_score(model_key="credit-default", features=applicant(1))
    ModelVersion.objects.filter(pk=second.pk).update(stage=ModelVersion.Stage.ARCHIVED)
    model_version_promote(version_id=first.pk)
    after_raw_sql_and_promotion = model_score(model_key="credit-default", features=applicant(1))

    assert after_promotion.model_version == second.version
    assert after_raw_sql_and_promotion.model_version == first.version
