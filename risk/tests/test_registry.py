import io
import json

import pandas as pd
import pytest
import skops.io
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from core.models import AuditEntry
from risk.exceptions import InvalidArtifact
from risk.models import ModelVersion, RiskModel
from risk.services import model_version_promote, model_version_register
from risk.tests.factories import credit_model_register, trained_credit_model

THRESHOLDS = [["low", 0.5], ["high", None]]


def _small_model(categories: int) -> tuple[bytes, list[dict]]:
    """A pipeline over one numeric and one categorical column with `categories` values."""
    values = [f"v{i}" for i in range(categories)]
    frame = pd.DataFrame({"amount": [float(i % 7) for i in range(categories)], "kind": values})
    pipeline = Pipeline(
        [
            (
                "preprocess",
                ColumnTransformer(
                    [
                        ("numeric", StandardScaler(), ["amount"]),
                        ("categorical", OneHotEncoder(sparse_output=False), ["kind"]),
                    ]
                ),
            ),
            ("classifier", LogisticRegression()),
        ]
    ).fit(frame, [i % 2 for i in range(categories)])
    buffer = io.BytesIO()
    skops.io.dump(pipeline, buffer)
    schema = [
        {"name": "amount", "type": "number"},
        {"name": "kind", "type": "category", "values": values},
    ]
    return buffer.getvalue(), schema


def test_it_numbers_versions_and_keeps_one_production_version(db):
    first = credit_model_register(promote=True)

    second = credit_model_register(promote=True)

    first.refresh_from_db()
    assert (first.version, first.stage) == (1, ModelVersion.Stage.ARCHIVED)
    assert (second.version, second.stage) == (2, ModelVersion.Stage.PRODUCTION)
    assert second.promoted_at is not None
    assert list(
        AuditEntry.objects.filter(target_type="model_version")
        .order_by("id")
        .values_list("action", flat=True)
    ) == [
        "model_version.register",
        "model_version.promote",
        "model_version.register",
        "model_version.promote",
    ]


def test_the_database_refuses_a_second_production_version(db):
    credit_model_register(promote=True)
    staging = credit_model_register(promote=False)

    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersion.objects.filter(pk=staging.pk).update(stage=ModelVersion.Stage.PRODUCTION)


def test_promoting_the_production_version_again_changes_nothing(credit_model):
    promoted = model_version_promote(version_id=credit_model.pk)

    assert promoted.stage == ModelVersion.Stage.PRODUCTION
    assert AuditEntry.objects.filter(action="model_version.promote").count() == 1


def test_it_rejects_a_model_whose_embedding_would_exceed_384_dimensions(db):
    artifact, schema = _small_model(categories=400)

    with pytest.raises(InvalidArtifact) as caught:
        model_version_register(
            key="wide", artifact=artifact, feature_schema=schema, label_thresholds=THRESHOLDS
        )

    assert "401 dimensions" in caught.value.detail
    assert "at most 384" in caught.value.detail
    assert not RiskModel.objects.exists()


def test_it_rejects_bad_label_thresholds(db):
    artifact, schema = _small_model(categories=4)

    with pytest.raises(InvalidArtifact) as caught:
        model_version_register(
            key="small",
            artifact=artifact,
            feature_schema=schema,
            label_thresholds=[["low", 0.7], ["mid", 0.4], ["high", None]],
        )

    assert list(caught.value.errors) == ["label_thresholds[1]"]
    assert not ModelVersion.objects.exists()


def test_it_rejects_a_schema_that_does_not_match_the_pipeline(db):
    artifact, _schema = _small_model(categories=4)

    with pytest.raises(InvalidArtifact) as caught:
        model_version_register(
            key="small",
            artifact=artifact,
            feature_schema=[{"name": "amount", "type": "number"}],
            label_thresholds=THRESHOLDS,
        )

    assert caught.value.detail == "The pipeline uses column 'kind', not in the schema."
    assert not RiskModel.objects.exists()


def test_register_model_command_registers_a_skops_file_with_its_schema(db, tmp_path):
    artifact, schema = _small_model(categories=4)
    (tmp_path / "model.skops").write_bytes(artifact)
    (tmp_path / "schema.json").write_text(
        json.dumps({"features": schema, "label_thresholds": THRESHOLDS, "name": "Small"})
    )
    out = io.StringIO()

    call_command(
        "register_model",
        "small-model",
        artifact=str(tmp_path / "model.skops"),
        schema=str(tmp_path / "schema.json"),
        promote=True,
        stdout=out,
    )

    version = ModelVersion.objects.select_related("model").get()
    assert (version.model.key, version.model.name, version.version) == ("small-model", "Small", 1)
    assert version.stage == ModelVersion.Stage.PRODUCTION
    assert version.embedding_source_dimensions == 5
    assert "Registered small-model v1 (production), 5 encoded dimensions." in out.getvalue()


def test_register_model_command_explains_a_too_long_embedding(db, tmp_path):
    artifact, schema = _small_model(categories=400)
    (tmp_path / "model.skops").write_bytes(artifact)
    (tmp_path / "schema.json").write_text(
        json.dumps({"features": schema, "label_thresholds": THRESHOLDS})
    )

    with pytest.raises(CommandError) as caught:
        call_command(
            "register_model",
            "wide",
            artifact=str(tmp_path / "model.skops"),
            schema=str(tmp_path / "schema.json"),
        )

    assert "401 dimensions; record embeddings hold at most 384" in str(caught.value)
    assert not ModelVersion.objects.exists()


def test_register_model_command_rejects_a_schema_file_that_is_not_json(db, tmp_path):
    artifact, _schema = _small_model(categories=4)
    (tmp_path / "model.skops").write_bytes(artifact)
    (tmp_path / "schema.json").write_text("{not json")

    with pytest.raises(CommandError, match="is not valid JSON"):
        call_command(
            "register_model",
            "small",
            artifact=str(tmp_path / "model.skops"),
            schema=str(tmp_path / "schema.json"),
        )

    assert not RiskModel.objects.exists()


def test_train_model_trains_registers_promotes_and_then_skips(db):
    out = io.StringIO()

    call_command(
        "train_model", "credit-default", "--promote", "--if-missing", "--folds", "2", stdout=out
    )
    call_command("train_model", "credit-default", "--promote", "--if-missing", stdout=out)

    version = ModelVersion.objects.get()
    assert version.stage == ModelVersion.Stage.PRODUCTION
    assert version.metrics["cv_folds"] == 2
    assert 0.7 < version.metrics["roc_auc_mean"] < 0.9
    assert 0.1 < version.metrics["brier_mean"] < 0.25
    assert version.dataset_fingerprint == trained_credit_model().dataset_fingerprint
    assert len(version.feature_schema) == 20
    output = out.getvalue()
    assert "Fold 2/2: ROC AUC" in output
    assert "Registered credit-default v1 (production): ROC AUC" in output
    assert "already has a production version; nothing to do." in output
