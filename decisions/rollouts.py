"""Safe roll-outs: which version of each rule decides a given event.

- Scheduled activation: a version published with a future `effective_from` waits as
  `scheduled`; the published version keeps deciding until that instant and the scheduled one
  from then on, decided per event by its received time, so there is no gap and no overlap
  whenever the housekeeping task files the switch.
- Canary: a `canary` version decides `canary_percent` % of the events, chosen by hashing a
  payload field (with the rule key, so a customer stays in one arm and a larger percentage only
  adds customers); the rest go to the control (the published version). The decision records
  the arm per rule, and the replay checks the arm again from the stored payload.

The chosen version goes to the engine as `published`, so the engine needs no notion of either.
"""

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from decisions import engine
from decisions.models import RuleVersion

ROLLOUT_STATUSES = (
    RuleVersion.Status.PUBLISHED,
    RuleVersion.Status.SHADOW,
    RuleVersion.Status.SCHEDULED,
    RuleVersion.Status.CANARY,
)
BUCKETS = 10_000  # a percentage in hundredths


@dataclass(frozen=True)
class LiveVersion:
    row: RuleVersion
    status: str  # as the engine sees it: published or shadow


@dataclass
class LiveSet:
    versions: list[LiveVersion] = field(default_factory=list)
    arms: dict[str, dict[str, Any]] = field(default_factory=dict)


def canary_bucket(*, rule_key: str, value: Any) -> int:
    """A stable bucket in [0, 10000) for a payload value (JSON, so 7 and "7" differ)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(f"{rule_key}\x00{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def canary_arm(*, rule_key: str, percent: int, value: Any) -> tuple[str, int | None]:
    """("canary" | "control", bucket); an event without the key goes to the control."""
    if value is None:
        return "control", None
    bucket = canary_bucket(rule_key=rule_key, value=value)
    return ("canary" if bucket < percent * BUCKETS // 100 else "control"), bucket


def in_effect(version: RuleVersion, at: datetime) -> bool:
    return (version.effective_from is None or version.effective_from <= at) and (
        version.effective_until is None or version.effective_until > at
    )


Slots = list[tuple[str, dict[str, RuleVersion]]]


def rollout_slots(rows: Iterable[RuleVersion]) -> Slots:
    """The roll-out versions grouped by rule key ({status: version}), in rule key order: built
    once per rules generation (decisions.live_rules), read per event."""
    slots: dict[str, dict[str, RuleVersion]] = {}
    for row in rows:
        slots.setdefault(row.rule.key, {})[row.status] = row
    return sorted(slots.items())


def varies_per_event(rows: Iterable[RuleVersion]) -> bool:
    """Whether the live set can differ between events: a version with a start or an end, or a
    canary. Otherwise every event runs the same versions, so the set is built once."""
    return any(
        row.effective_from is not None
        or row.effective_until is not None
        or row.status in (RuleVersion.Status.SCHEDULED, RuleVersion.Status.CANARY)
        for row in rows
    )


def live_set(
    *,
    rows: Iterable[RuleVersion] | None = None,
    slots: Slots | None = None,
    payload: Mapping[str, Any],
    at: datetime,
) -> LiveSet:
    """The versions that run for an event received at `at`, one deciding version per rule
    (from the roll-out `rows`, or their `slots` when already grouped)."""
    if slots is None:
        slots = rollout_slots(rows or ())
    live = LiveSet()
    for rule_key, by_status in slots:
        control = by_status.get(RuleVersion.Status.PUBLISHED)
        scheduled = by_status.get(RuleVersion.Status.SCHEDULED)
        if scheduled is not None and in_effect(scheduled, at):
            control = scheduled
        deciding = control
        canary = by_status.get(RuleVersion.Status.CANARY)
        if canary is not None and in_effect(canary, at) and canary.canary_percent:
            arm, bucket = canary_arm(
                rule_key=rule_key,
                percent=canary.canary_percent,
                value=payload.get(canary.canary_key),
            )
            if arm == "canary":
                deciding = canary
            live.arms[rule_key] = {
                "arm": arm,
                "version_id": deciding.pk if deciding else None,
                "canary_version_id": canary.pk,
                "control_version_id": control.pk if control else None,
                "percent": canary.canary_percent,
                "key": canary.canary_key,
                "bucket": bucket,
            }
        if deciding is not None and in_effect(deciding, at):
            live.versions.append(LiveVersion(deciding, engine.PUBLISHED))
        shadow = by_status.get(RuleVersion.Status.SHADOW)
        if shadow is not None and in_effect(shadow, at):
            live.versions.append(LiveVersion(shadow, engine.SHADOW))
    return live


def arm_differences(
    *, arms: Mapping[str, Mapping[str, Any]], payload: Mapping[str, Any]
) -> list[str]:
    """The stored arms whose assignment the stored payload no longer reproduces (replay)."""
    differences = []
    for rule_key, stored in sorted(arms.items()):
        arm, _bucket = canary_arm(
            rule_key=rule_key, percent=stored["percent"], value=payload.get(stored["key"])
        )
        if arm != stored["arm"]:
            differences.append(f"rule {rule_key}: arm {stored['arm']} became {arm}")
    return differences
