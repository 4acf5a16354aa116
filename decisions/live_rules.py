"""The rules an event type runs: its roll-out versions and its policy, cached per process.

Loading them costs two queries and fifty model rows per event (about a quarter of an event's
Python time at 50 rules, measured in bench/http_load.py), and a third for the velocity
aggregates its rules read. They change only when someone writes a rule, a version, a policy or
an aggregate, and every such write moves the rules generation (core.generations; the triggers
are migrations 0006 and 0008), so an event reads that one number and loads the rows again only
when it moved.

The cached rows are shared between events: read them, never change them.
"""

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils import timezone

from core.generations import GenerationCache, generation_query, generation_read
from decisions import engine, rollouts, selectors, velocity
from decisions.models import RuleVersion, VelocityAggregate

RULES_GENERATION = "decisions_rules_generation"
RULES_GENERATION_SQL = generation_query(RULES_GENERATION)
# Rule sets per live set, per event type: bounded, cleared whole when full.
_RULE_SETS_LIMIT = 1_000
_CACHE: "GenerationCache[LiveRules]" = GenerationCache(generation=RULES_GENERATION)
_LOCK = threading.Lock()


@dataclass
class LiveRules:
    """An event type's policy and roll-out versions as of one rules generation."""

    policy: engine.PolicySpec
    rows: tuple[RuleVersion, ...]
    aggregates: Mapping[str, VelocityAggregate]  # the policy's velocity aggregates by name
    # Rule sets per live set ((version id, status as the engine sees it) in order): canaries
    # and scheduled take-overs make the live set differ between events of one generation.
    _rule_sets: dict[tuple[tuple[int, str], ...], engine.RuleSet] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Built once per generation rather than per event (fifty related-row reads each).
        self.rows_by_id = {row.pk: row for row in self.rows}
        self.rule_names = {row.rule.key: row.rule.name for row in self.rows}
        self._slots = rollouts.rollout_slots(self.rows)
        self._same_for_every_event = (
            None
            if rollouts.varies_per_event(self.rows)
            else rollouts.live_set(slots=self._slots, payload={}, at=timezone.now())
        )

    def live_set(self, *, payload: Mapping[str, Any], at: datetime) -> rollouts.LiveSet:
        """The versions that run for this event (rollouts.live_set)."""
        same = self._same_for_every_event
        if same is not None:
            return rollouts.LiveSet(versions=same.versions, arms={})
        return rollouts.live_set(slots=self._slots, payload=payload, at=at)

    def aggregates_named(self, names: Iterable[str]) -> list[VelocityAggregate]:
        """The declared aggregates among `names`, by name (velocity.aggregates_named's order)."""
        return [self.aggregates[name] for name in sorted(set(names)) if name in self.aggregates]

    def rule_set(self, live: list[tuple[RuleVersion, str]]) -> engine.RuleSet:
        """The compiled rule set of these (row, status) pairs, built once per generation."""
        key = tuple((row.pk, status) for row, status in live)
        found = self._rule_sets.get(key)
        if found is None:
            found = engine.rule_set(
                selectors.compiled_version(row, status=status) for row, status in live
            )
            with _LOCK:
                if len(self._rule_sets) >= _RULE_SETS_LIMIT:
                    self._rule_sets.clear()
                self._rule_sets[key] = found
        return found


def rules_generation() -> int | None:
    """The current rules generation."""
    return generation_read(RULES_GENERATION)


def live_rules_for(*, event_type: str, generation: int | None = None) -> "LiveRules":
    """The event type's policy and roll-out versions, loaded again only when rules changed
    (`generation`: the rules generation when the caller read it already, RULES_GENERATION_SQL)."""
    return _CACHE.get(
        event_type,
        lambda: LiveRules(
            policy=selectors.policy_spec_for(event_type=event_type),
            rows=tuple(selectors.rollout_rule_versions(event_type=event_type)),
            aggregates={
                aggregate.name: aggregate
                for aggregate in velocity.aggregates_declared(event_type=event_type)
            },
        ),
        generation=generation,
    )
