"""The decision engine: one CEL context per event, compiled programs cached per rule version.

Pure and deterministic: it reads no clock (`now` is the event's received time) and no database,
so a decision can be replayed from its stored inputs (event, rule versions, list contents,
policy, risk) and reproduces itself exactly. The services load those inputs and store the result.
"""

import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import cel

from core.expressions import EvaluationError, build_context, compile_expression, evaluate

# `velocity` and `similar` come from the event's history (decisions.velocity and
# decisions.similarity), computed by the service only when a live rule reads them.
ALLOWED_VARIABLES = ("event", "event_type", "now", "lists", "risk", "velocity", "similar")
PUBLISHED = "published"
SHADOW = "shadow"
DEFAULT_STRATEGY = "first_match"
DEFAULT_OUTCOME = "approve"
_LIST_REFERENCE = re.compile(r"""\blists\s*(?:\.\s*([A-Za-z_]\w*)|\[\s*["']([^"']+)["']\s*\])""")

# Programs per immutable version id: a version's condition never changes, so neither does its
# program; bounded so a long-lived worker cannot grow without limit.
_PROGRAM_CACHE: dict[tuple[int, str], cel.Program] = {}
_PROGRAM_CACHE_LIMIT = 10_000
_PROGRAM_CACHE_LOCK = threading.Lock()


@dataclass(frozen=True)
class PolicySpec:
    """The policy as applied to one event (stored on the decision for replays)."""

    event_type: str
    strategy: str = DEFAULT_STRATEGY
    default_outcome: str = DEFAULT_OUTCOME
    precedence: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "event_type": self.event_type,
            "strategy": self.strategy,
            "default_outcome": self.default_outcome,
            "precedence": list(self.precedence),
        }

    @classmethod
    def from_json(cls, stored: Mapping[str, Any]) -> "PolicySpec":
        return cls(
            event_type=stored["event_type"],
            strategy=stored["strategy"],
            default_outcome=stored["default_outcome"],
            precedence=tuple(stored.get("precedence") or ()),
        )

    def rank(self, outcome: str) -> int:
        """Lower is more severe; outcomes missing from the precedence rank last."""
        try:
            return self.precedence.index(outcome)
        except ValueError:
            return len(self.precedence)


@dataclass(frozen=True)
class RiskInput:
    """A risk score computed for the event, exposed to rules as `risk.score` / `risk.label`."""

    score: float
    label: str


@dataclass(frozen=True)
class CompiledVersion:
    """What the engine needs of one rule version, with its compiled program."""

    version_id: int
    rule_key: str
    number: int
    status: str
    priority: int
    outcome: str
    program: cel.Program
    actions: tuple[dict[str, Any], ...] = ()
    list_names: tuple[str, ...] = ()

    @property
    def order(self) -> tuple[int, str, int]:
        # Lower priority first, ties by key; a rule's shadow right after its published version.
        return (self.priority, self.rule_key, 0 if self.status == PUBLISHED else 1)


@dataclass
class EngineResult:
    outcome: str
    matched: CompiledVersion | None
    shadow_outcome: str
    trace: list[dict[str, Any]]
    actions: list[dict[str, Any]]
    engine_us: float


def compile_condition(source: str, *, field: str = "condition") -> cel.Program:
    """Compile a rule condition against the variables rules may read (ExpressionError if bad)."""
    return compile_expression(
        source, allowed_variables=ALLOWED_VARIABLES, field=field, set_variable="lists"
    )


def referenced_lists(source: str) -> list[str]:
    """Names of the lists a condition reads (`lists.name` or `lists["name"]`)."""
    return sorted({match[0] or match[1] for match in _LIST_REFERENCE.findall(source)})


@lru_cache(maxsize=4096)
def lists_read_whole(compiled_source: str) -> frozenset[str]:
    """The lists a compiled expression reads as CEL values, i.e. other than by set lookup."""
    return frozenset(referenced_lists(compiled_source))


def program_for(version_id: int, source: str) -> cel.Program:
    """The compiled program of an immutable version, compiled once per process."""
    cache_key = (version_id, source)
    program = _PROGRAM_CACHE.get(cache_key)
    if program is None:
        program = compile_condition(source)
        with _PROGRAM_CACHE_LOCK:
            if len(_PROGRAM_CACHE) >= _PROGRAM_CACHE_LIMIT:
                _PROGRAM_CACHE.clear()
            _PROGRAM_CACHE[cache_key] = program
    return program


def build_variables(
    *,
    event_type: str,
    payload: Mapping[str, Any],
    received_at: datetime,
    lists: Mapping[str, Sequence[Any]],
    risk: RiskInput | None,
    history: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    variables: dict[str, Any] = {
        "event": payload,
        "event_type": event_type,
        "now": received_at,
        # Only the lists some expression reads whole (`size(lists.x)`, ...): membership tests are
        # set lookups that never touch this variable, and converting a 10,000-value list into
        # the CEL context costs about 30 ms (measured in bench/cel_bounds.py).
        "lists": {name: list(values) for name, values in lists.items()},
    }
    if risk is not None:
        variables["risk"] = {"score": risk.score, "label": risk.label}
    # Extra variables (velocity, similar): absent when not computed, so a rule reading one on
    # an event without it (e.g. no customer id) is an evaluation error in the trace.
    for name, values in (history or {}).items():
        variables[name] = dict(values)
    return variables


def decide(
    *,
    event_type: str,
    payload: Mapping[str, Any],
    received_at: datetime,
    versions: Iterable[CompiledVersion],
    policy: PolicySpec,
    lists: Mapping[str, Sequence[Any]],
    risk: RiskInput | None = None,
    history: Mapping[str, Mapping[str, Any]] | None = None,
) -> EngineResult:
    """Evaluate every version against one shared context and apply the policy's strategy.

    Every published and shadow version is evaluated (not only up to the first match), so the
    trace shows everything that would have matched; shadow versions never decide.
    """
    started = time.perf_counter_ns()
    ordered = sorted(versions, key=lambda version: version.order)
    context = build_context(
        build_variables(
            event_type=event_type,
            payload=payload,
            received_at=received_at,
            lists={name: lists[name] for name in _lists_needed_whole(ordered) if name in lists},
            risk=risk,
            history=history,
        ),
        sets=lists,
    )
    trace: list[dict[str, Any]] = []
    matching: list[CompiledVersion] = []
    clock = time.perf_counter_ns
    for version in ordered:
        # The hot loop: core.expressions.evaluate_boolean's checks, inlined (two calls less).
        evaluation_started = clock()
        error = None
        try:
            value = version.program.execute(context)
        except Exception as failure:  # the CEL runtime raises KeyError, TypeError, ValueError
            value = None
            error = f"{type(failure).__name__}: {failure}"[:500]
        elapsed = clock() - evaluation_started
        if error is None and value is not True and value is not False:
            error = f"The expression returned {type(value).__name__}, not a boolean."
        entry: dict[str, Any] = {
            "version_id": version.version_id,
            "rule": version.rule_key,
            "version": version.number,
            "status": version.status,
            "priority": version.priority,
            "outcome": version.outcome,
            "result": "error" if error else ("true" if value else "false"),
            "us": (elapsed // 10) / 100,
            "decided": False,
        }
        if error:
            entry["error"] = error
        trace.append(entry)
        if value is True:
            matching.append(version)

    live = [version for version in matching if version.status == PUBLISHED]
    decider = _choose(live, policy)
    outcome = decider.outcome if decider else policy.default_outcome
    shadow_rules = {version.rule_key for version in ordered if version.status == SHADOW}
    with_shadows = [
        version
        for version in matching
        if version.status == SHADOW
        or (version.status == PUBLISHED and version.rule_key not in shadow_rules)
    ]
    shadow_decider = _choose(with_shadows, policy)
    shadow_outcome = shadow_decider.outcome if shadow_decider else policy.default_outcome

    deciders = _deciders(live, policy, decider)
    decider_ids = {version.version_id for version in deciders}
    for entry in trace:
        entry["decided"] = entry["version_id"] in decider_ids
    actions = _resolve_actions(deciders, context)
    return EngineResult(
        outcome=outcome,
        matched=decider,
        shadow_outcome=shadow_outcome,
        trace=trace,
        actions=actions,
        engine_us=round((time.perf_counter_ns() - started) / 1000, 2),
    )


def _lists_needed_whole(versions: Sequence[CompiledVersion]) -> set[str]:
    needed: set[str] = set()
    for version in versions:
        needed |= lists_read_whole(version.program.source)
        for action in version.actions:
            if isinstance(action.get("to"), str):
                needed |= lists_read_whole(compile_condition(action["to"]).source)
    return needed


def _choose(matching: Sequence[CompiledVersion], policy: PolicySpec) -> CompiledVersion | None:
    """first_match: the first by priority; collect: the most severe outcome, first by priority."""
    if not matching:
        return None
    if policy.strategy == "collect":
        return min(matching, key=lambda version: (policy.rank(version.outcome), version.order))
    return matching[0]


def _deciders(
    live: Sequence[CompiledVersion], policy: PolicySpec, decider: CompiledVersion | None
) -> list[CompiledVersion]:
    """The versions whose actions run: the decider, or under collect every match that agrees."""
    if decider is None:
        return []
    if policy.strategy == "collect":
        return [version for version in live if version.outcome == decider.outcome]
    return [decider]


def _resolve_actions(
    deciders: Sequence[CompiledVersion], context: cel.Context
) -> list[dict[str, Any]]:
    """The actions to perform, with their `to` expression evaluated against the event."""
    resolved: list[dict[str, Any]] = []
    for version in deciders:
        for action in version.actions:
            entry = {**action, "rule": version.rule_key, "version": version.number}
            target = action.get("to")
            if isinstance(target, str):
                entry["to_expression"] = target
                try:
                    value = evaluate(compile_condition(target, field="actions.to"), context)
                    entry["to"] = (
                        value if isinstance(value, (str, int, float, bool)) else str(value)
                    )
                except EvaluationError as error:
                    entry["to"] = None
                    entry["error"] = str(error)[:500]
            resolved.append(entry)
    return resolved


def comparable(trace: Sequence[Mapping[str, Any]]) -> list[tuple[int, str, str]]:
    """The part of a trace a replay must reproduce (timings naturally differ)."""
    return [(entry["version_id"], entry["status"], entry["result"]) for entry in trace]
