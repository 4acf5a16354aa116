"""Similar cases: `similar.count`, `similar.declined_share` and `similar.mean_score` over the
k earlier decided records of the same model nearest to this event's record (pgvector, cosine).

Computed inside the decision's transaction only when a live rule reads `similar`, and stored on
the decision with the neighbours themselves (the decision page lists them), so a replay reads
the same numbers rather than searching an index that has grown since.
"""

import re
from typing import Any

from django.conf import settings

from decisions.models import Decision
from records import selectors as records_selectors

_REFERENCE = re.compile(r"\bsimilar\s*[.\[]")
DECLINED = "decline"


def reads_similar(source: str) -> bool:
    """Whether a condition reads `similar.<name>` (or `similar["name"]`)."""
    return bool(_REFERENCE.search(source))


def similar_cases(*, record_id: int, k: int | None = None) -> dict[str, Any]:
    """What the rules read about the record's nearest earlier cases, and those cases."""
    k = k or settings.DECISIONS_SIMILAR_K
    neighbours = records_selectors.record_earlier_cases(record_id=record_id, k=k)
    # Each neighbour belongs to an event (record_earlier_cases asks for that).
    event_ids = [neighbour.record.event_id for neighbour in neighbours if neighbour.record.event_id]
    decided: dict[int, tuple[int | None, str]] = {
        event_id: (decision_id, outcome)
        for decision_id, event_id, outcome in Decision.objects.filter(
            event_id__in=event_ids
        ).values_list("id", "event_id", "outcome")
    }
    cases: list[dict[str, Any]] = []
    for neighbour in neighbours:
        decision_id, outcome = decided.get(neighbour.record.event_id or 0, (None, ""))
        cases.append(
            {
                "record_id": neighbour.record.pk,
                "event_id": neighbour.record.event_id,
                "decision_id": decision_id,
                "outcome": outcome,
                "risk_score": neighbour.record.risk_score,
                "distance": round(neighbour.distance, 6),
            }
        )
    count = len(cases)
    declined = sum(1 for case in cases if case["outcome"] == DECLINED)
    return {
        "count": count,
        "declined_share": declined / count if count else 0.0,
        "mean_score": sum(case["risk_score"] for case in cases) / count if count else 0.0,
        "k": k,
        "neighbours": cases,
    }


def similar_variables(stored: dict[str, Any]) -> dict[str, Any]:
    """The part of the stored cases the rules read."""
    return {name: stored[name] for name in ("count", "declined_share", "mean_score")}
