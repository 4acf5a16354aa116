"""Reads of the model registry, and scoring (a read: it stores nothing)."""

import time
from collections.abc import Mapping, Sequence
from typing import Any

from django.db.models import Prefetch, QuerySet

from core import telemetry
from core.generations import GenerationCache
from risk.drift import DRIFT_ACT, DRIFT_WATCH, SCORE, drift_level, window_stability
from risk.exceptions import InvalidFeatures, ModelNotFound
from risk.models import ModelVersion, RiskModel
from risk.schema import features_validate
from risk.scoring import LoadedModel, Scoring, loaded_model_build, loaded_model_cached
from risk.training import german_credit_rows

# Other apps import risk only through selectors and services: these are part of the contract.
__all__ = [
    "DRIFT_ACT",
    "DRIFT_WATCH",
    "SCORE",
    "InvalidFeatures",
    "LoadedModel",
    "Scoring",
    "drift_level",
    "features_validate",
    "german_credit_applicants",
    "model_get",
    "model_has_production_version",
    "model_list",
    "model_list_in_production",
    "model_risk_labels",
    "model_score",
    "model_score_rows",
    "model_version_get",
    "model_version_loaded",
    "model_versions_in_production",
    "production_models_warm",
    "window_stability",
]


def model_list() -> QuerySet[RiskModel]:
    """Every model with its versions (newest first), artifacts left in the database."""
    versions = ModelVersion.objects.defer("artifact").order_by("-version")
    return RiskModel.objects.prefetch_related(Prefetch("versions", queryset=versions))


def model_risk_labels() -> list[str]:
    """Every label a model version can give, once each: models by key, then each version's
    thresholds in ascending order (the newest version first)."""
    thresholds = ModelVersion.objects.order_by("model__key", "-version").values_list(
        "label_thresholds", flat=True
    )
    labels = {label: None for version in thresholds for label, _upper in version}
    return list(labels)


def model_list_in_production() -> QuerySet[RiskModel]:
    """Models that can score now: those with a production version."""
    return RiskModel.objects.filter(versions__stage=ModelVersion.Stage.PRODUCTION)


def _model_not_found(key: str) -> ModelNotFound:
    return ModelNotFound(f"No model {key!r}.", errors={"model_id": [f"unknown model {key!r}"]})


def model_get(*, key: str) -> RiskModel:
    model = model_list().filter(key=key).first()
    if model is None:
        raise _model_not_found(key)
    return model


def model_versions_in_production() -> list[ModelVersion]:
    """Every production version (one per model), artifacts left in the database."""
    return list(
        ModelVersion.objects.defer("artifact")
        .select_related("model")
        .filter(stage=ModelVersion.Stage.PRODUCTION)
        .order_by("model__key")
    )


def model_has_production_version(*, key: str) -> bool:
    return ModelVersion.objects.filter(model__key=key, stage=ModelVersion.Stage.PRODUCTION).exists()


def german_credit_applicants() -> list[tuple[int, dict[str, Any]]]:
    """The shipped data set's applicants as (CSV line, features), e.g. for demo records."""
    return list(german_credit_rows())


def model_version_get(*, key: str, version: int | None = None) -> ModelVersion:
    """The given version of a model, or its production version when `version` is None."""
    # Scoring reads none of the large columns: the artifact (read once per process on a cache
    # miss), the training reference of drift (~20 KB of JSON, decoded on every prediction when
    # it was loaded here) and the metrics. A caller that reads one loads it then.
    versions = (
        ModelVersion.objects.defer("artifact", "reference_distribution", "metrics")
        .select_related("model")
        .filter(model__key=key)
    )
    if version is None:
        found = versions.filter(stage=ModelVersion.Stage.PRODUCTION).first()
        problem = f"Model {key!r} has no production version."
    else:
        found = versions.filter(version=version).first()
        problem = f"Model {key!r} has no version {version}."
    if found is None:
        if not RiskModel.objects.filter(key=key).exists():
            raise _model_not_found(key)
        field = "model_id" if version is None else "version"
        raise ModelNotFound(problem, errors={field: [problem]})
    return found


def model_feature_reasons(*, key: str, version: int) -> dict[str, str]:
    """{feature: text} for reason codes, kept in the version's feature schema: each feature's
    `reason` (written for the applicant, as adverse-action notices need), else its description."""
    schema = (
        ModelVersion.objects.filter(model__key=key, version=version)
        .values_list("feature_schema", flat=True)
        .first()
    )
    return {
        feature["name"]: feature.get("reason") or feature.get("description") or feature["name"]
        for feature in schema or []
    }


def model_version_loaded(*, model_version: ModelVersion) -> LoadedModel:
    """The version ready to score, from the per-process cache (the artifact is read on a miss)."""

    def build() -> LoadedModel:
        artifact = bytes(
            ModelVersion.objects.values_list("artifact", flat=True).get(pk=model_version.pk)
        )
        return loaded_model_build(
            key=model_version.model.key,
            version=model_version.version,
            artifact=artifact,
            schema=model_version.feature_schema,
            thresholds=model_version.label_thresholds,
            baseline=model_version.encoded_baseline,
        )

    return loaded_model_cached(
        version_id=model_version.pk,
        artifact_sha256=model_version.artifact_sha256,
        build=build,
    )


MODELS_GENERATION = "risk_models_generation"
_SCORING_VERSIONS: GenerationCache[ModelVersion] = GenerationCache(
    generation=MODELS_GENERATION, limit=256
)


def model_version_for_scoring(*, key: str, version: int | None = None) -> ModelVersion:
    """model_version_get, cached per process until a model or version changes (one
    primary-key lookup a prediction instead of the version's row and its JSON schema). The row
    is shared between requests: read it, never change it."""
    return _SCORING_VERSIONS.get(
        (key, version), lambda: model_version_get(key=key, version=version)
    )


def model_score(
    *,
    model_key: str,
    features: Any,
    version: int | None = None,
    coerce_strings: bool = False,
) -> Scoring:
    """Validate one applicant's features against the schema and score them."""
    model_version = model_version_for_scoring(key=model_key, version=version)
    started = time.perf_counter()
    clean = features_validate(model_version.feature_schema, features, coerce_strings=coerce_strings)
    scoring = model_version_loaded(model_version=model_version).score_many([clean])[0]
    telemetry.scoring_observe(model=model_key, seconds=time.perf_counter() - started)
    return scoring


def model_score_rows(
    *,
    model_version: ModelVersion,
    rows: Sequence[Mapping[str, Any]],
    coerce_strings: bool = False,
) -> list[Scoring | InvalidFeatures]:
    """Score many rows in one pass; each result is a Scoring or the row's validation error."""
    outcomes: list[Scoring | InvalidFeatures | None] = []
    valid: list[dict[str, Any]] = []
    for row in rows:
        try:
            valid.append(
                features_validate(model_version.feature_schema, row, coerce_strings=coerce_strings)
            )
            outcomes.append(None)
        except InvalidFeatures as error:
            outcomes.append(error)
    scored = iter(model_version_loaded(model_version=model_version).score_many(valid))
    return [next(scored) if outcome is None else outcome for outcome in outcomes]


def production_models_warm() -> list[LoadedModel]:
    """Load every production version into this process's cache (start-up warm-up)."""
    versions = ModelVersion.objects.filter(stage=ModelVersion.Stage.PRODUCTION).select_related(
        "model"
    )
    return [model_version_loaded(model_version=version) for version in versions.defer("artifact")]
