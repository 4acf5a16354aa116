"""Loading skops artifacts safely, and scoring with exact per-feature drivers and embeddings.

The supported shape is the one `train_model` builds and `register_model` accepts: a scikit-learn
`Pipeline` of a `ColumnTransformer` (the preprocessing) followed by a binary linear classifier
(`coef_`, `intercept_`, e.g. LogisticRegression). For such a model the logit is linear in the
encoded vector z, so with a baseline b (the mean encoded training row):

    logit = (intercept + coef·b) + Σ_features Σ_{columns j of the feature} coef_j (z_j - b_j)

Each feature's contribution is its inner sum; `base_logit` = intercept + coef·b is the logit of
the average applicant. Contributions plus `base_logit` reproduce the logit exactly (tested).

The embedding is z itself, L2-normalised and zero-padded to 384 dimensions, so cosine distance
between two records compares applicants the way the model sees them.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from django.conf import settings

from risk.exceptions import InvalidArtifact
from risk.models import EMBEDDING_DIMENSIONS

# pandas and scikit-learn (with scipy) are imported where a model is loaded or a frame built,
# not here: Django imports this module at start-up (admin, services), and those imports cost
# every process (web, workers, management commands) about two seconds of CPU it may never need.
if TYPE_CHECKING:
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

CACHE_SIZE = 16


@dataclass(frozen=True)
class Driver:
    feature: str
    value: Any
    contribution: float


@dataclass(frozen=True)
class Scoring:
    """The outcome of scoring one applicant with one model version."""

    model_key: str
    model_version: int
    features: dict[str, Any]
    score: float
    label: str
    logit: float
    base_logit: float
    drivers: list[Driver]
    embedding: np.ndarray

    def drivers_as_json(self) -> list[dict[str, Any]]:
        return [
            {"feature": d.feature, "value": d.value, "contribution": d.contribution}
            for d in self.drivers
        ]


def artifact_load(artifact: bytes) -> Pipeline:
    """Load a skops artifact, refusing any type outside skops' defaults and our allowlist."""
    # Deferred: skops.io imports every scikit-learn module to build its trusted-type list,
    # seconds that every web and worker process would otherwise pay at start-up.
    import skops.io

    try:
        untrusted = skops.io.get_untrusted_types(data=artifact)
    except Exception as error:
        raise InvalidArtifact(f"Not a readable skops file: {error}") from None
    refused = sorted(set(untrusted) - set(settings.RISK_TRUSTED_TYPES))
    if refused:
        raise InvalidArtifact(
            "The artifact contains types that are not trusted: " + ", ".join(refused[:10]),
            errors={"artifact": [f"untrusted type {name}" for name in refused[:10]]},
        )
    try:
        pipeline = skops.io.loads(artifact, trusted=untrusted)
    except Exception as error:
        raise InvalidArtifact(f"The skops file could not be loaded: {error}") from None
    return pipeline


def _column_slices(
    preprocess: ColumnTransformer, feature_names: Sequence[str]
) -> dict[str, list[int]]:
    """Which encoded columns each original feature produced (every column must be accounted)."""
    slices: dict[str, list[int]] = {name: [] for name in feature_names}
    position = 0
    for _name, transformer, columns in preprocess.transformers_:
        if transformer == "drop" or len(columns) == 0:
            continue
        columns = [str(column) for column in columns]
        if transformer == "passthrough":
            outputs = columns
        else:
            outputs = [str(name) for name in transformer.get_feature_names_out(columns)]
        for output in outputs:
            # An encoder names its outputs `<column>` or `<column>_<value>`; take the longest match.
            owners = [c for c in columns if output == c or output.startswith(c + "_")]
            if not owners:
                raise InvalidArtifact(f"Cannot attribute encoded column {output!r} to a feature.")
            owner = max(owners, key=len)
            if owner not in slices:
                raise InvalidArtifact(f"The pipeline uses column {owner!r}, not in the schema.")
            slices[owner].append(position)
            position += 1
    return slices


@dataclass(frozen=True)
class _EncodingStep:
    """One transformer of the ColumnTransformer, replayed with numpy on plain rows."""

    kind: str  # "scale", "one_hot" or "passthrough"
    columns: list[str]
    mean: np.ndarray | None = None
    scale: np.ndarray | None = None
    positions: list[dict[Any, int]] | None = None
    width: int = 0


def _fast_plan(preprocess: ColumnTransformer) -> list[_EncodingStep] | None:
    """The encoding as numpy steps when every transformer is one we can replay exactly.

    sklearn's transform validates and converts a DataFrame per transformer, which costs ~15 ms
    for one row; StandardScaler and OneHotEncoder are simple enough to replay (same arithmetic,
    same column order), and the exactness test compares the result with sklearn's own.
    Anything else (custom transformers, dropped or infrequent categories) uses sklearn.
    """
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    steps = []
    for _name, transformer, columns in preprocess.transformers_:
        if transformer == "drop" or len(columns) == 0:
            continue
        if not all(isinstance(column, str) for column in columns):
            return None
        columns = list(columns)
        if transformer == "passthrough":
            steps.append(_EncodingStep(kind="passthrough", columns=columns, width=len(columns)))
        elif type(transformer) is StandardScaler:
            width = len(columns)
            mean = transformer.mean_ if transformer.with_mean else np.zeros(width)
            scale = transformer.scale_ if transformer.with_std else np.ones(width)
            steps.append(
                _EncodingStep(
                    kind="scale",
                    columns=columns,
                    mean=np.asarray(mean, dtype=np.float64),
                    scale=np.asarray(scale, dtype=np.float64),
                    width=width,
                )
            )
        elif (
            type(transformer) is OneHotEncoder
            and transformer.drop_idx_ is None
            and not getattr(transformer, "_infrequent_enabled", False)
        ):
            positions = [
                {category: index for index, category in enumerate(categories)}
                for categories in transformer.categories_
            ]
            steps.append(
                _EncodingStep(
                    kind="one_hot",
                    columns=columns,
                    positions=positions,
                    width=sum(len(p) for p in positions),
                )
            )
        else:
            return None
    return steps


def _fast_encode(steps: list[_EncodingStep], rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Raises KeyError on a category the encoder never saw (sklearn then decides)."""
    width = sum(step.width for step in steps)
    encoded = np.zeros((len(rows), width), dtype=np.float64)
    start = 0
    for step in steps:
        if step.kind == "one_hot":
            assert step.positions is not None
            offset = start
            for column, positions in zip(step.columns, step.positions, strict=True):
                for index, row in enumerate(rows):
                    encoded[index, offset + positions[row[column]]] = 1.0
                offset += len(positions)
        else:
            values = np.array(
                [[float(row[column]) for column in step.columns] for row in rows],
                dtype=np.float64,
            )
            if step.kind == "scale":
                assert step.mean is not None
                assert step.scale is not None
                values = (values - step.mean) / step.scale
            encoded[:, start : start + step.width] = values
        start += step.width
    return encoded


@dataclass(frozen=True)
class ScoredArrays:
    """Scores of many rows as arrays: per-feature contributions (rows x features, in `names`
    order), logits, scores, the base logit and the embeddings."""

    names: list[str]
    contributions: np.ndarray
    logits: np.ndarray
    scores: np.ndarray
    base_logit: float
    embeddings: np.ndarray


@dataclass
class LoadedModel:
    """A model version ready to score: its pipeline split into encoding and linear scoring."""

    key: str
    version: int
    schema: list[dict[str, Any]]
    thresholds: list[tuple[str, float | None]]
    preprocess: ColumnTransformer
    coef: np.ndarray
    intercept: float
    baseline: np.ndarray
    slices: dict[str, list[int]]
    fast_plan: list[_EncodingStep] | None = None

    @property
    def encoded_dimensions(self) -> int:
        return int(self.coef.shape[0])

    def frame(self, rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
        import pandas as pd

        columns: dict[str, Any] = {}
        for feature in self.schema:
            name, kind = feature["name"], feature["type"]
            values = [row[name] for row in rows]
            if kind == "category":
                columns[name] = pd.Series(values, dtype=object)
            elif kind == "boolean":
                columns[name] = pd.Series([int(bool(v)) for v in values], dtype="int64")
            elif kind == "integer":
                columns[name] = pd.Series(values, dtype="int64")
            else:
                columns[name] = pd.Series(values, dtype="float64")
        return pd.DataFrame(columns)

    def encode(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        if self.fast_plan is not None:
            try:
                return _fast_encode(self.fast_plan, rows)
            except KeyError:
                pass  # an unseen category: sklearn raises or ignores it as configured
        return self.encode_with_sklearn(rows)

    def encode_with_sklearn(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        encoded = self.preprocess.transform(self.frame(rows))
        if hasattr(encoded, "toarray"):
            encoded = encoded.toarray()
        return np.asarray(encoded, dtype=np.float64)

    def label_for(self, score: float) -> str:
        for label, upper in self.thresholds:
            if upper is None or score < upper:
                return label
        return self.thresholds[-1][0]

    def score_arrays(self, rows: Sequence[Mapping[str, Any]]) -> ScoredArrays:
        """The arithmetic of scoring, for many rows at once: every caller that scores (one
        applicant or a back-fill batch) runs these same operations, so they agree to the bit."""
        encoded = self.encode(rows)
        centred = (encoded - self.baseline) * self.coef
        contributions = np.column_stack(
            [centred[:, columns].sum(axis=1) for columns in self.slices.values()]
        )
        # A row-wise sum, not `encoded @ coef`: BLAS picks another kernel (and summation order)
        # for one row than for many, so a batch's scores differed from single ones in the last bit.
        logits = (encoded * self.coef).sum(axis=1) + self.intercept
        norms = np.linalg.norm(encoded, axis=1, keepdims=True)
        unit = np.divide(encoded, norms, out=np.zeros_like(encoded), where=norms > 0)
        embeddings = np.zeros((len(rows), EMBEDDING_DIMENSIONS), dtype=np.float32)
        embeddings[:, : encoded.shape[1]] = unit
        return ScoredArrays(
            names=list(self.slices),
            contributions=contributions,
            logits=logits,
            scores=1.0 / (1.0 + np.exp(-logits)),
            base_logit=float(self.intercept + self.coef @ self.baseline),
            embeddings=embeddings,
        )

    def score_many(self, rows: Sequence[Mapping[str, Any]]) -> list[Scoring]:
        """Score validated feature rows in one vectorised pass."""
        if not rows:
            return []
        arrays = self.score_arrays(rows)
        logits, scores, base_logit = arrays.logits, arrays.scores, arrays.base_logit
        embeddings = arrays.embeddings
        results = []
        for index, row in enumerate(rows):
            drivers = [
                Driver(feature=name, value=row[name], contribution=float(contribution))
                for name, contribution in zip(
                    arrays.names, arrays.contributions[index], strict=True
                )
            ]
            drivers.sort(key=lambda driver: abs(driver.contribution), reverse=True)
            score = float(scores[index])
            results.append(
                Scoring(
                    model_key=self.key,
                    model_version=self.version,
                    features=dict(row),
                    score=score,
                    label=self.label_for(score),
                    logit=float(logits[index]),
                    base_logit=base_logit,
                    drivers=drivers,
                    embedding=embeddings[index],
                )
            )
        return results


def loaded_model_build(
    *,
    key: str,
    version: int,
    artifact: bytes,
    schema: list[dict[str, Any]],
    thresholds: Sequence[Sequence[Any]],
    baseline: Sequence[float] | None,
) -> LoadedModel:
    """Load and check an artifact against its schema; raises InvalidArtifact with the reason."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    pipeline = artifact_load(artifact)
    if not isinstance(pipeline, Pipeline) or len(pipeline.steps) != 2:
        raise InvalidArtifact(
            "The artifact must be a Pipeline of a ColumnTransformer + classifier."
        )
    preprocess, classifier = pipeline.steps[0][1], pipeline.steps[1][1]
    if not isinstance(preprocess, ColumnTransformer):
        raise InvalidArtifact("The pipeline's first step must be a ColumnTransformer.")
    coef = np.asarray(getattr(classifier, "coef_", None), dtype=np.float64)
    classes = getattr(classifier, "classes_", [])
    if coef.ndim != 2 or coef.shape[0] != 1 or len(classes) != 2:
        raise InvalidArtifact("The classifier must be a fitted binary linear model (coef_).")
    slices = _column_slices(preprocess, [feature["name"] for feature in schema])
    width = coef.shape[1]
    if sum(len(columns) for columns in slices.values()) != width:
        raise InvalidArtifact("The encoded columns do not match the classifier's coefficients.")
    if width > EMBEDDING_DIMENSIONS:
        raise InvalidArtifact(
            f"The model's preprocessed feature vector has {width} dimensions; record embeddings "
            f"hold at most {EMBEDDING_DIMENSIONS}. Reduce the encoding (fewer categories or "
            "features) before registering.",
            errors={"artifact": [f"{width} encoded dimensions > {EMBEDDING_DIMENSIONS}"]},
        )
    baseline_vector = np.zeros(width) if not baseline else np.asarray(baseline, dtype=np.float64)
    if baseline_vector.shape != (width,):
        raise InvalidArtifact(f"The baseline must have {width} values.")
    return LoadedModel(
        key=key,
        version=version,
        schema=schema,
        thresholds=[
            (str(label), None if upper is None else float(upper)) for label, upper in thresholds
        ],
        preprocess=preprocess,
        coef=coef[0],
        intercept=float(np.asarray(classifier.intercept_).ravel()[0]),
        baseline=baseline_vector,
        slices=slices,
        fast_plan=_fast_plan(preprocess),
    )


_cache: OrderedDict[tuple[int, str], LoadedModel] = OrderedDict()
_cache_lock = threading.Lock()
# Builds are rare and slow (seconds on a cold process): one at a time, so a request that arrives
# while the start-up warm-up is loading the same version waits for it instead of loading again.
_build_lock = threading.Lock()


def _cached(cache_key: tuple[int, str]) -> LoadedModel | None:
    with _cache_lock:
        if cache_key in _cache:
            _cache.move_to_end(cache_key)
            return _cache[cache_key]
    return None


def loaded_model_cached(
    *, version_id: int, artifact_sha256: str, build: Callable[[], LoadedModel]
) -> LoadedModel:
    """Per-process cache of loaded versions (versions are immutable, so no invalidation)."""
    cache_key = (version_id, artifact_sha256)
    if (hit := _cached(cache_key)) is not None:
        return hit
    with _build_lock:
        if (hit := _cached(cache_key)) is not None:
            return hit
        loaded = build()
        with _cache_lock:
            _cache[cache_key] = loaded
            while len(_cache) > CACHE_SIZE:
                _cache.popitem(last=False)
    return loaded


def loaded_model_is_cached(*, version_id: int, artifact_sha256: str) -> bool:
    with _cache_lock:
        return (version_id, artifact_sha256) in _cache
