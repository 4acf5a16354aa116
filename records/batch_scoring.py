"""Validation and scoring of a back-fill batch in one vectorised pass, without the database.

The row path (`risk.selectors.model_score_rows`) validates each row feature by feature and builds
a `Scoring` with `Driver` objects per row; for an import of 100,000 rows those objects cost
more than the arithmetic. Here a batch is validated column by column with one parser per
feature, scored with the loaded model's encoding and coefficients over the whole batch, and each
row comes out as the values its record stores (features, embedding, score, label, drivers,
base logit). A row the column parsers do not accept whole goes through
`risk.schema.features_validate`, so a rejected row gets exactly its error messages; the scores,
drivers and embeddings are those of `LoadedModel.score_many` on the same batch, bit for bit
(tested in records/tests/test_batch_scoring.py).
"""

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from risk.selectors import InvalidFeatures, LoadedModel, features_validate

_INTEGER = re.compile(r"^[+-]?\d{1,18}$")  # as risk.schema accepts them
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


@dataclass(frozen=True)
class PreparedRow:
    """What the record of one valid row stores, computed from its batch."""

    model_key: str
    model_version: int
    features: dict[str, Any]
    embedding: np.ndarray
    score: float
    label: str
    drivers: list[dict[str, Any]]
    base_logit: float


class _Refused(Exception):
    """The column parser does not take this value; features_validate decides."""


def _bounded(feature: Mapping[str, Any], value: Any) -> Any:
    minimum, maximum = feature.get("minimum"), feature.get("maximum")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise _Refused
    return value


def _parser(feature: Mapping[str, Any]) -> Callable[[str], Any]:
    """Text (a CSV cell, not blank) to the typed value risk.schema's `_parse` gives it."""
    kind = feature["type"]
    if kind == "integer":

        def integer(raw: str) -> Any:
            text = raw.strip()
            if not _INTEGER.match(text):
                raise _Refused
            return _bounded(feature, int(text))

        return integer
    if kind == "number":

        def number(raw: str) -> Any:
            try:
                value = float(raw.strip())
            except ValueError:
                raise _Refused from None
            if not math.isfinite(value):
                raise _Refused
            return _bounded(feature, value)

        return number
    if kind == "boolean":

        def boolean(raw: str) -> Any:
            text = raw.strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            raise _Refused

        return boolean
    allowed = frozenset(feature["values"])

    def category(raw: str) -> Any:
        if raw not in allowed:
            raise _Refused
        return raw

    return category


def rows_validate(
    schema: Sequence[Mapping[str, Any]], rows: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any] | InvalidFeatures]:
    """Each text row (CSV cells) typed by the schema, or its InvalidFeatures."""
    names = [feature["name"] for feature in schema]
    known = set(names)
    parsers = [
        (feature["name"], _parser(feature), feature.get("required", True), feature.get("default"))
        for feature in schema
    ]
    results: list[dict[str, Any] | InvalidFeatures] = []
    for row in rows:
        try:
            if not known.issuperset(row):
                raise _Refused
            clean: dict[str, Any] = {}
            for name, parse, required, default in parsers:
                raw = row.get(name)
                if raw is None or (isinstance(raw, str) and not raw.strip()):
                    if required:
                        raise _Refused
                    clean[name] = default
                elif isinstance(raw, str):
                    clean[name] = parse(raw)
                else:
                    raise _Refused
            results.append(clean)
        except _Refused:
            try:
                results.append(features_validate(schema, row, coerce_strings=True))
            except InvalidFeatures as error:
                results.append(error)
    return results


def rows_score(loaded: LoadedModel, rows: Sequence[dict[str, Any]]) -> list[PreparedRow]:
    """Valid rows scored in one pass: the arithmetic of LoadedModel.score_many, without its
    per-row objects (same operations on the same arrays, so the same bits)."""
    if not rows:
        return []
    arrays = loaded.score_arrays(rows)
    names, contributions, scores = arrays.names, arrays.contributions, arrays.scores
    embeddings = arrays.embeddings
    # score_many sorts each row's drivers by |contribution|, largest first, ties in feature
    # order (a stable sort); argsort of the negated magnitudes, stable, gives the same order.
    orders = np.argsort(-np.abs(contributions), axis=1, kind="stable").tolist()
    values = contributions.tolist()
    prepared = []
    for index, row in enumerate(rows):
        row_values = values[index]
        score = float(scores[index])
        prepared.append(
            PreparedRow(
                model_key=loaded.key,
                model_version=loaded.version,
                features=dict(row),
                embedding=embeddings[index],
                score=score,
                label=loaded.label_for(score),
                drivers=[
                    {
                        "feature": names[column],
                        "value": row[names[column]],
                        "contribution": row_values[column],
                    }
                    for column in orders[index]
                ],
                base_logit=arrays.base_logit,
            )
        )
    return prepared


def rows_prepare(
    loaded: LoadedModel, rows: Sequence[Mapping[str, Any]]
) -> list[PreparedRow | InvalidFeatures]:
    """Validate and score a batch of text rows: each a PreparedRow or its InvalidFeatures."""
    checked = rows_validate(loaded.schema, rows)
    valid = [result for result in checked if not isinstance(result, InvalidFeatures)]
    scored = iter(rows_score(loaded, valid))
    return [result if isinstance(result, InvalidFeatures) else next(scored) for result in checked]
