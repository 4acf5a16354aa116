"""The rules an event type runs: its roll-out versions and its policy, cached per process.

Loading them costs two queries and fifty model rows per event (about a quarter of an event's
Python time at 50 rules, measured in bench/http_load.py). They change only when someone writes
a rule, a version or a policy, and every such write moves the rules generation (a trigger,
migration 0006), so an event reads that one number and loads the rows again only when it
moved. The generation is read before the rows: a change committed between the two reads is
cached under the older number, which the next event no longer sees, so it is reloaded; never
the other way round (old rows under a new number).

The cached rows are shared between events: read them, never change them.
"""

import threading
from dataclasses import dataclass, field

from django.db import connection

from decisions import engine, selectors
from decisions.models import RuleVersion

_GENERATION_QUERY = "SELECT value FROM decisions_rules_generation WHERE id = 1"
# Event types are the integrators' to invent: bounded, cleared whole when full.
_CACHE_LIMIT = 1_000
_CACHE: dict[tuple[str, str], "LiveRules"] = {}
_LOCK = threading.Lock()


@dataclass
class LiveRules:
    """An event type's policy and roll-out versions as of one rules generation."""

    generation: int | None
    policy: engine.PolicySpec
    rows: tuple[RuleVersion, ...]
    # Rule sets per live set ((version id, status as the engine sees it) in order): canaries
    # and scheduled take-overs make the live set differ between events of one generation.
    _rule_sets: dict[tuple[tuple[int, str], ...], engine.RuleSet] = field(default_factory=dict)

    def rule_set(self, live: list[tuple[RuleVersion, str]]) -> engine.RuleSet:
        """The compiled rule set of these (row, status) pairs, built once per generation."""
        key = tuple((row.pk, status) for row, status in live)
        found = self._rule_sets.get(key)
        if found is None:
            found = engine.rule_set(
                selectors.compiled_version(row, status=status) for row, status in live
            )
            with _LOCK:
                if len(self._rule_sets) >= _CACHE_LIMIT:
                    self._rule_sets.clear()
                self._rule_sets[key] = found
        return found


def rules_generation() -> int | None:
    """The current rules generation (None if its row is missing: then nothing is cached)."""
    with connection.cursor() as cursor:
        cursor.execute(_GENERATION_QUERY)
        found = cursor.fetchone()
    return int(found[0]) if found else None


def live_rules_for(*, event_type: str) -> LiveRules:
    """The event type's policy and roll-out versions, loaded again only when rules changed."""
    generation = rules_generation()
    key = (connection.settings_dict["NAME"], event_type)
    cached = _CACHE.get(key)
    if cached is not None and generation is not None and cached.generation == generation:
        return cached
    loaded = LiveRules(
        generation=generation,
        policy=selectors.policy_spec_for(event_type=event_type),
        rows=tuple(selectors.rollout_rule_versions(event_type=event_type)),
    )
    if generation is not None:
        with _LOCK:
            if len(_CACHE) >= _CACHE_LIMIT:
                _CACHE.clear()
            _CACHE[key] = loaded
    return loaded
