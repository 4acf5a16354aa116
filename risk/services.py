"""Writes of the model registry: register a version, promote it to production."""

import hashlib
import re
from collections.abc import Sequence
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from core.audit import Actor, audit_record
from core.errors import DomainError, InvalidInput
from risk.drift import reference_build
from risk.exceptions import InvalidArtifact, ModelNotFound
from risk.models import ModelVersion, RiskModel
from risk.schema import schema_check
from risk.scoring import loaded_model_build
from risk.selectors import model_score_rows
from risk.training import TrainedModel, dataset_fingerprint, german_credit_rows


def _thresholds_check(thresholds: Any) -> list[list[Any]]:
    problem = (
        "Label thresholds must be ascending [[label, upper], ...] with upper bounds in (0, 1] "
        'and the last upper bound null, e.g. [["low", 0.3], ["medium", 0.6], ["high", null]].'
    )
    if not isinstance(thresholds, list) or not thresholds:
        raise InvalidArtifact(problem, errors={"label_thresholds": [problem]})
    previous = 0.0
    for index, pair in enumerate(thresholds):
        last = index == len(thresholds) - 1
        ok = (
            isinstance(pair, list | tuple)
            and len(pair) == 2
            and isinstance(pair[0], str)
            and 0 < len(pair[0]) <= 32
        )
        if ok and last:
            ok = pair[1] is None
        elif ok:
            upper = pair[1]
            ok = isinstance(upper, int | float) and previous < upper <= 1
            previous = upper if ok else previous
        if not ok:
            raise InvalidArtifact(problem, errors={f"label_thresholds[{index}]": [problem]})
    return [list(pair) for pair in thresholds]


@transaction.atomic
def model_version_register(
    *,
    key: str,
    artifact: bytes,
    feature_schema: Any,
    label_thresholds: Any,
    metrics: dict[str, Any] | None = None,
    dataset_fingerprint: str = "",
    baseline: Sequence[float] | None = None,
    reference: dict[str, Any] | None = None,
    name: str = "",
    description: str = "",
    promote: bool = False,
    actor: Actor = None,
) -> ModelVersion:
    """Check an artifact against its schema (loadable, attributable, ≤ 384 dims) and add it."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", key or ""):
        raise InvalidInput(
            "A model key is 1 to 64 lowercase letters, digits, '-' or '_'.",
            errors={"key": ["1 to 64 of a-z, 0-9, '-', '_', starting with a letter or digit"]},
        )
    schema = schema_check(feature_schema)
    thresholds = _thresholds_check(label_thresholds)
    # Loading proves the artifact is safe and fits the schema before anything is written.
    loaded = loaded_model_build(
        key=key,
        version=0,
        artifact=artifact,
        schema=schema,
        thresholds=thresholds,
        baseline=baseline,
    )
    model, _created = RiskModel.objects.get_or_create(
        key=key, defaults={"name": name or key, "description": description}
    )
    # Lock the model row so two registrations cannot pick the same version number.
    RiskModel.objects.select_for_update().filter(pk=model.pk).get()
    latest = model.versions.aggregate(latest=Max("version"))["latest"] or 0
    model_version = ModelVersion(
        model=model,
        version=latest + 1,
        artifact=artifact,
        artifact_sha256=hashlib.sha256(artifact).hexdigest(),
        feature_schema=schema,
        label_thresholds=thresholds,
        metrics=metrics or {},
        dataset_fingerprint=dataset_fingerprint,
        encoded_baseline=list(baseline or []),
        reference_distribution=reference or {},
        embedding_source_dimensions=loaded.encoded_dimensions,
    )
    model_version.full_clean()
    model_version.save()
    audit_record(
        actor=actor,
        action="model_version.register",
        target_type="model_version",
        target_id=model_version.pk,
        after={"model": key, "version": model_version.version, "metrics": metrics or {}},
    )
    if promote:
        model_version_promote(version_id=model_version.pk, actor=actor)
        model_version.refresh_from_db(fields=["stage", "promoted_at"])
    return model_version


def model_version_register_trained(
    *, key: str, trained: TrainedModel, promote: bool = False, actor: Actor = None
) -> ModelVersion:
    """Register a model trained by `risk.training` (the shipped credit-default model)."""
    return model_version_register(
        key=key,
        name="Credit default (German Credit)",
        description=(
            "Logistic regression on the Statlog German Credit data (UCI, Hofmann 1994, "
            "CC BY 4.0): probability that an applicant is a bad credit risk."
        ),
        artifact=trained.artifact,
        feature_schema=trained.schema,
        label_thresholds=trained.thresholds,
        metrics=trained.metrics,
        dataset_fingerprint=trained.dataset_fingerprint,
        baseline=trained.baseline,
        reference=trained.reference,
        promote=promote,
        actor=actor,
    )


@transaction.atomic
def model_version_promote(*, version_id: int, actor: Actor = None) -> ModelVersion:
    """Make a version production; the previous production version is archived."""
    model_version = (
        ModelVersion.objects.defer("artifact").select_related("model").filter(pk=version_id).first()
    )
    if model_version is None:
        raise ModelNotFound(f"No model version {version_id}.")
    # Serialise promotions of one model: lock the model row first.
    RiskModel.objects.select_for_update().filter(pk=model_version.model_id).get()
    if model_version.stage == ModelVersion.Stage.PRODUCTION:
        return model_version
    previous = list(
        ModelVersion.objects.filter(
            model_id=model_version.model_id, stage=ModelVersion.Stage.PRODUCTION
        ).values_list("version", flat=True)
    )
    ModelVersion.objects.filter(
        model_id=model_version.model_id, stage=ModelVersion.Stage.PRODUCTION
    ).update(stage=ModelVersion.Stage.ARCHIVED)
    model_version.stage = ModelVersion.Stage.PRODUCTION
    model_version.promoted_at = timezone.now()
    model_version.save(update_fields=["stage", "promoted_at"])
    audit_record(
        actor=actor,
        action="model_version.promote",
        target_type="model_version",
        target_id=model_version.pk,
        before={"production_versions": previous},
        after={"model": model_version.model.key, "version": model_version.version},
    )
    return model_version


def model_version_reference_ensure(*, model_version: ModelVersion) -> dict[str, Any]:
    """The version's training reference for drift; a version registered before references
    were kept, and trained on the shipped data set, gets it now from that data (scored by the
    version itself). Empty when the training data is not known here."""
    if model_version.reference_distribution:
        return model_version.reference_distribution
    if model_version.dataset_fingerprint != dataset_fingerprint():
        return {}
    rows = [row for _line, row in german_credit_rows()]
    scorings = model_score_rows(model_version=model_version, rows=rows)
    kept = [
        (row, scoring.score)
        for row, scoring in zip(rows, scorings, strict=True)
        if not isinstance(scoring, DomainError)
    ]
    reference = reference_build(
        rows=[row for row, _score in kept],
        scores=[score for _row, score in kept],
        schema=model_version.feature_schema,
    )
    ModelVersion.objects.filter(pk=model_version.pk).update(reference_distribution=reference)
    model_version.reference_distribution = reference
    return reference
