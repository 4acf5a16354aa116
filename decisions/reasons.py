"""Reason codes: why a decision came out as it did, in the form adverse-action notices need.

The deciding rules first (their key is the code, their name the text; the policy's default when
no rule decided), then, when the event was scored, the drivers that pushed the score towards
risk, largest first, with the text the scoring model version keeps for each feature.
"""

from collections.abc import Mapping, Sequence
from typing import Any

# Credit notices give the principal reasons, customarily at most four.
MAX_DRIVER_REASONS = 4
DEFAULT_CODE = "default"


def reasons_for(
    *,
    outcome: str,
    deciders: Sequence[tuple[str, str]],
    drivers: Sequence[Mapping[str, Any]] | None = None,
    driver_texts: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """[{"kind", "code", "text", ...}] for a decision: `deciders` are (rule key, rule name)."""
    reasons: list[dict[str, Any]] = [
        {"kind": "rule", "code": key, "text": name} for key, name in deciders
    ]
    if not reasons:
        reasons.append(
            {
                "kind": "policy",
                "code": DEFAULT_CODE,
                "text": f"No rule matched; the policy's default outcome is {outcome}.",
            }
        )
    towards_risk = sorted(
        (driver for driver in drivers or () if driver["contribution"] > 0),
        key=lambda driver: (-driver["contribution"], driver["feature"]),
    )
    texts = driver_texts or {}
    reasons.extend(
        {
            "kind": "driver",
            "code": driver["feature"],
            "text": texts.get(driver["feature"], driver["feature"]),
            "value": driver["value"],
            "contribution": round(driver["contribution"], 6),
        }
        for driver in towards_risk[:MAX_DRIVER_REASONS]
    )
    return reasons


def comparable(reasons: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """What a replay must reproduce: the kinds and codes, in order."""
    return [(reason["kind"], reason["code"]) for reason in reasons]
