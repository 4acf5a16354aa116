"""Population stability: how far a window of live inputs (or scores) moved from the training data.

Pure functions. A version's reference is built once from its training rows and stored with it
(`ModelVersion.reference_distribution`): numeric features (and the score) as the training
deciles' bin edges with each bin's share, categories and booleans as each value's share. A live
window is counted into the same bins, and the population stability index compares the shares:
PSI = Σ (actual - expected) · ln(actual / expected), 0.1 the usual "watch", 0.25 "act".
"""

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

DRIFT_WATCH = 0.1
DRIFT_ACT = 0.25
SCORE = "(score)"  # the name the score's row takes beside the features (no feature is named so)
BINS = 10
# An empty bin on either side would make the logarithm infinite: shares are floored at this.
SHARE_FLOOR = 1e-4
OTHER = "(other)"  # a category the training data never had


def drift_level(psi: float | None) -> str:
    if psi is None:
        return "unknown"
    if psi >= DRIFT_ACT:
        return "act"
    if psi >= DRIFT_WATCH:
        return "watch"
    return "ok"


def _numeric_reference(values: Sequence[float]) -> dict[str, Any]:
    array = np.asarray(values, dtype=np.float64)
    quantiles = np.quantile(array, np.linspace(0, 1, BINS + 1)[1:-1])
    edges = sorted({float(edge) for edge in quantiles})
    counts = np.bincount(np.searchsorted(edges, array, side="right"), minlength=len(edges) + 1)
    return {"kind": "numeric", "edges": edges, "shares": (counts / len(array)).tolist()}


def _category_reference(values: Sequence[Any]) -> dict[str, Any]:
    labels = sorted({str(value) for value in values})
    counts = {label: 0 for label in labels}
    for value in values:
        counts[str(value)] += 1
    return {
        "kind": "category",
        "values": labels,
        "shares": [counts[label] / len(values) for label in labels],
    }


def reference_build(
    *, rows: Sequence[Mapping[str, Any]], scores: Sequence[float], schema: Sequence[Mapping]
) -> dict[str, Any]:
    """The training reference of every feature of the schema, and of the score."""
    features = {}
    for feature in schema:
        values = [row[feature["name"]] for row in rows if row.get(feature["name"]) is not None]
        if not values:
            continue
        numeric = feature["type"] in ("integer", "number")
        features[feature["name"]] = (
            _numeric_reference(values) if numeric else _category_reference(values)
        )
    return {"rows": len(rows), "features": features, "score": _numeric_reference(scores)}


@dataclass
class BinCounter:
    """Counts a window's values into one reference's bins, one value at a time."""

    reference: Mapping[str, Any]
    counts: list[int] = field(default_factory=list)
    total: int = 0

    def __post_init__(self) -> None:
        size = len(self.reference["shares"]) + (self.reference["kind"] == "category")
        self.counts = [0] * size
        if self.reference["kind"] == "category":
            self._index = {value: i for i, value in enumerate(self.reference["values"])}

    def add(self, value: Any) -> None:
        if value is None:
            return
        if self.reference["kind"] == "numeric":
            try:
                number = float(value)
            except (TypeError, ValueError):
                return
            # bisect, not numpy: one scalar at a time, numpy's call overhead is 10x the search.
            position = bisect.bisect_right(self.reference["edges"], number)
        else:
            position = self._index.get(str(value), len(self.counts) - 1)
        self.counts[position] += 1
        self.total += 1

    def psi(self) -> float | None:
        """The index against the reference (None for an empty window)."""
        if not self.total:
            return None
        expected = list(self.reference["shares"])
        if self.reference["kind"] == "category":
            expected.append(0.0)  # the training data had no unseen category
        return psi(expected, [count / self.total for count in self.counts])


def psi(expected: Sequence[float], actual: Sequence[float]) -> float:
    total = 0.0
    for expected_share, actual_share in zip(expected, actual, strict=True):
        e, a = max(expected_share, SHARE_FLOOR), max(actual_share, SHARE_FLOOR)
        total += (a - e) * math.log(a / e)
    return round(total, 6)


def window_stability(
    *, reference: Mapping[str, Any], window: Iterable[tuple[Mapping[str, Any], float]]
) -> tuple[dict[str, float | None], int]:
    """PSI of each referenced feature and of the score (under SCORE) over the window's
    (features, score) pairs, and the window's size."""
    counters = {name: BinCounter(spec) for name, spec in reference["features"].items()}
    score_counter = BinCounter(reference["score"])
    for features, score in window:
        for name, counter in counters.items():
            counter.add(features.get(name))
        score_counter.add(score)
    results = {name: counter.psi() for name, counter in counters.items()}
    results[SCORE] = score_counter.psi()
    return results, score_counter.total
