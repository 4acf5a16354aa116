"""The decision engine: a rule set compiled once per set of versions, one CEL context per event.

Over 500 lines because the decision types, the rule-set compilation and the hot path read best
together; what a condition lets the engine decide before CEL is decisions/conditions.py.

Pure and deterministic: it reads no clock for decisions (`now` is the event's received time) and
no database, so a decision can be replayed from its stored inputs (event, rule versions, list
contents, policy, risk) and reproduces itself exactly. The services load those inputs and store
the result.

Speed (bench/decisions_engine.py, docs/benchmarks.md): a `RuleSet` holds the versions in
evaluation order, each version's trace entry without its result, the variables the conditions
read (the only ones converted into the CEL context) and a guard per condition. A condition that
starts with `event.<field> == "<text>" && ...` (or compares an integer field with an integer) is
false whenever the payload's field holds a value of that type that fails the comparison: CEL
evaluates `&&` left to right and `false && anything` is false, so the engine writes `false`
into the trace without running the program. Everything else (missing field, another type, any
other shape of condition) runs through CEL as written, so every result is the one CEL gives;
only the cost differs. The context is built only when some condition has to run.
"""

import operator
import re
import threading
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property, lru_cache
from typing import Any

import cel

from core.expressions import (
    MEMBERSHIP_FUNCTION,
    EvaluationError,
    compile_expression,
    evaluate,
    membership,
)
from decisions.conditions import INT64 as _INT64
from decisions.conditions import ORDERINGS as _ORDERINGS
from decisions.conditions import Chain, condition_chain, event_fields

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
_VARIABLES_CACHE: dict[str, frozenset[str]] = {}


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


@dataclass(frozen=True)
class RuleSet:
    """Versions compiled for evaluation: ordered, with their trace entries and guards."""

    versions: tuple[CompiledVersion, ...]
    # Per version: its trace entry without the per-event keys (result, decided, error).
    entries: tuple[dict[str, Any], ...]
    # The variables the conditions read: the context carries only those.
    variables: frozenset[str]
    # The lists some condition reads whole (`size(lists.x)`); membership tests are set lookups
    # that never read the `lists` variable (converting a 10,000-value list into the CEL context
    # costs about 30 ms: bench/cel_bounds.py).
    lists_whole: frozenset[str]
    # The payload fields the conditions read, when they read `event` only as `event.<field>`
    # (then only those fields are converted into CEL values); None: the whole payload.
    event_fields: tuple[str, ...] | None
    shadow_rules: frozenset[str]
    # Per version: the checks Python decides before CEL (None: CEL only).
    chains: tuple[Chain | None, ...]
    # Versions whose first conjunct is `event.field == "text"`, grouped by field ({text:
    # versions} and the whole group): a payload holding a string picks one text's versions and
    # rules out the rest at once. Every other version is `ungrouped`.
    ungrouped: tuple[int, ...]
    string_groups: tuple[tuple[str, dict[str, tuple[int, ...]], tuple[int, ...]], ...]
    # Versions whose first conjunct is `event.field <op> 123` with op one of < <= > >=, grouped
    # by (field, op), sorted by the literal: one bisection picks the versions it leaves in.
    integer_groups: tuple[
        tuple[str, Callable[[Any, Any], bool], tuple[int, ...], tuple[int, ...]], ...
    ]

    def __iter__(self) -> Any:
        return iter(self.versions)

    def __len__(self) -> int:
        return len(self.versions)


class EngineResult:
    """The decision, and every version's result; the trace's dicts are built when first read."""

    def __init__(
        self,
        *,
        outcome: str,
        matched: CompiledVersion | None,
        shadow_outcome: str,
        rules: RuleSet,
        results: list[str],
        errors: dict[int, str],
        decider_ids: set[int],
        actions: list[dict[str, Any]],
        engine_us: float,
    ):
        self.outcome = outcome
        self.matched = matched
        self.shadow_outcome = shadow_outcome
        self.results = results
        self.actions = actions
        self.engine_us = engine_us
        self._rules = rules
        self._errors = errors
        self._decider_ids = decider_ids

    @cached_property
    def trace(self) -> list[dict[str, Any]]:
        """Every version evaluated, in order, with its result (true / false / error)."""
        decider_ids = self._decider_ids
        trace = [
            {**entry, "result": result, "decided": entry["version_id"] in decider_ids}
            for entry, result in zip(self._rules.entries, self.results, strict=True)
        ]
        for index, message in self._errors.items():
            trace[index]["error"] = message
        return trace


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


def _cached[K, V](cache: dict[K, V], key: K, build: Callable[[], V], *, limit: int) -> V:
    """The cached value for `key`, built on a miss; a full cache is cleared whole (a new
    deployment of rules replaces most of it anyway)."""
    found = cache.get(key)
    if found is None:
        found = build()
        with _PROGRAM_CACHE_LOCK:
            if len(cache) >= limit:
                cache.clear()
            cache[key] = found
    return found


def program_for(version_id: int, source: str) -> cel.Program:
    """The compiled program of an immutable version, compiled once per process."""
    return _cached(
        _PROGRAM_CACHE,
        (version_id, source),
        lambda: compile_condition(source),
        limit=_PROGRAM_CACHE_LIMIT,
    )


def rule_set(versions: Iterable[CompiledVersion]) -> RuleSet:
    """Compile versions into a rule set (do it once per set; `decide` accepts either)."""
    ordered = tuple(sorted(versions, key=lambda version: version.order))
    variables: set[str] = set()
    for version in ordered:
        variables.update(_variables_of(version.program))
    chains = tuple(condition_chain(version.program.source) for version in ordered)
    ungrouped: list[int] = []
    strings: dict[str, dict[str, list[int]]] = {}
    integers: dict[tuple[str, Callable[[Any, Any], bool]], list[tuple[int, int]]] = {}
    for index, chain in enumerate(chains):
        first = chain.checks[0] if chain else None
        if first is not None and first[1] is operator.eq and isinstance(first[2], str):
            strings.setdefault(first[0], {}).setdefault(first[2], []).append(index)
        elif first is not None and first[1] in _ORDERINGS and isinstance(first[2], int):
            integers.setdefault((first[0], first[1]), []).append((first[2], index))
        else:
            ungrouped.append(index)
    return RuleSet(
        versions=ordered,
        entries=tuple(
            {
                "version_id": version.version_id,
                "rule": version.rule_key,
                "version": version.number,
                "status": version.status,
                "priority": version.priority,
                "outcome": version.outcome,
            }
            for version in ordered
        ),
        variables=frozenset(variables),
        lists_whole=frozenset(
            name for version in ordered for name in lists_read_whole(version.program.source)
        ),
        event_fields=event_fields(tuple(version.program.source for version in ordered)),
        shadow_rules=frozenset(version.rule_key for version in ordered if version.status == SHADOW),
        chains=chains,
        ungrouped=tuple(ungrouped),
        string_groups=tuple(
            (
                field,
                {text: tuple(indices) for text, indices in by_text.items()},
                tuple(index for indices in by_text.values() for index in indices),
            )
            for field, by_text in strings.items()
        ),
        integer_groups=tuple(
            (
                field,
                comparison,
                tuple(literal for literal, _index in sorted(members)),
                tuple(index for _literal, index in sorted(members)),
            )
            for (field, comparison), members in integers.items()
        ),
    )


def _variables_of(program: cel.Program) -> frozenset[str]:
    """The variables a program reads, analysed once per condition text (the analysis costs tens
    of microseconds, a rule set built per event would pay it for every version)."""
    source = program.source
    found = _VARIABLES_CACHE.get(source)
    if found is None:
        found = frozenset(program.variables())
        with _PROGRAM_CACHE_LOCK:
            if len(_VARIABLES_CACHE) >= _PROGRAM_CACHE_LIMIT:
                _VARIABLES_CACHE.clear()
            _VARIABLES_CACHE[source] = found
    return found


# Rule sets per set of live versions. A version is immutable but for its status, and the
# engine sees a status (published or shadow) only as the roll-out decided it for this event, so
# the key (each version's id, status and what the set is compiled from) changes with every
# publish, retirement, canary arm and scheduled take-over: the next event builds the new set.
_RULE_SET_CACHE: dict[frozenset[tuple[Any, ...]], RuleSet] = {}
_RULE_SET_CACHE_LIMIT = 256


def _version_key(version: CompiledVersion) -> tuple[Any, ...]:
    # The program object stands for the condition: program_for keeps one per (id, text).
    return (
        version.version_id,
        version.status,
        version.program,
        version.priority,
        version.outcome,
        version.rule_key,
    )


def rule_set_cached(versions: Iterable[CompiledVersion]) -> RuleSet:
    """The rule set of these versions, compiled once per process (rule_set costs ~250 µs at 50
    rules; the key ~15 µs). Bounded: cleared whole when full, as the program cache is."""
    versions = tuple(versions)
    key = frozenset(_version_key(version) for version in versions)
    return _cached(_RULE_SET_CACHE, key, lambda: rule_set(versions), limit=_RULE_SET_CACHE_LIMIT)


def _rule_set_for(versions: Iterable[CompiledVersion] | RuleSet) -> RuleSet:
    # Callers that load versions per event pass lists: their set is compiled once per process.
    return versions if isinstance(versions, RuleSet) else rule_set_cached(versions)


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
        "lists": {name: list(values) for name, values in lists.items()},
    }
    if risk is not None:
        variables["risk"] = {"score": risk.score, "label": risk.label}
    # Extra variables (velocity, similar): absent when not computed, so a rule reading one on
    # an event without it (e.g. no customer id) is an evaluation error in the trace.
    for name, values in (history or {}).items():
        variables[name] = dict(values)
    return variables


def build_context(
    variables: Mapping[str, Any],
    *,
    sets: Mapping[str, Sequence[Any]],
    needed: Iterable[str] | None = None,
) -> Any:
    """The CEL context of one event, with only the `needed` variables when they are known, and
    the set lookups of the named lists (`sets`).

    Converting a variable into CEL values costs microseconds (a payload map most of all), so a
    variable no condition reads is left out: a condition cannot observe its absence.
    """
    if needed is not None:
        variables = {name: variables[name] for name in needed if name in variables}
    context = cel.Context(dict(variables))
    context.add_function(MEMBERSHIP_FUNCTION, membership(sets))
    return context


def decide(
    *,
    event_type: str,
    payload: Mapping[str, Any],
    received_at: datetime,
    versions: Iterable[CompiledVersion] | RuleSet,
    policy: PolicySpec,
    lists: Mapping[str, Sequence[Any]],
    risk: RiskInput | None = None,
    history: Mapping[str, Mapping[str, Any]] | None = None,
) -> EngineResult:
    """Evaluate every version against one shared context and apply the policy's strategy.

    Every published and shadow version is evaluated (not only up to the first match), so the
    trace shows everything that would have matched; shadow versions never decide. `history`
    adds context variables (velocity, similar), stored on the decision for replay.
    """
    started = time.perf_counter_ns()
    rules = _rule_set_for(versions)
    count = len(rules.versions)
    candidates: Iterable[int] = (
        _candidates(rules, payload) if isinstance(payload, Mapping) else range(count)
    )
    results = ["false"] * count
    errors: dict[int, str] = {}
    matching: list[CompiledVersion] = []
    context = None
    chains = rules.chains
    ordered = rules.versions
    get = payload.get if isinstance(payload, Mapping) else None
    for index in candidates:
        version = ordered[index]
        chain = chains[index]
        if chain is not None and get is not None:
            decided = None
            for field, comparison, literal in chain.checks:
                value = get(field)
                if value.__class__ is not literal.__class__ or (
                    value.__class__ is int and not -_INT64 <= value < _INT64
                ):
                    break  # not a value Python compares as CEL does: CEL decides
                if not comparison(value, literal):
                    decided = False
                    break
            else:
                if chain.complete:
                    decided = True
            if decided is False:
                continue  # results[index] is already "false"
            if decided:
                results[index] = "true"
                matching.append(version)
                continue
        if context is None:
            context = _event_context(rules, event_type, payload, received_at, lists, risk, history)
        try:
            value = version.program.execute(context)
        except Exception as failure:  # the CEL runtime raises KeyError, TypeError, ValueError
            errors[index] = f"{type(failure).__name__}: {failure}"[:500]
            results[index] = "error"
            continue
        if value is True:
            results[index] = "true"
            matching.append(version)
        elif value is not False:
            errors[index] = f"The expression returned {type(value).__name__}, not a boolean."
            results[index] = "error"

    live = [version for version in matching if version.status == PUBLISHED]
    decider = _choose(live, policy)
    outcome = decider.outcome if decider else policy.default_outcome
    if rules.shadow_rules:
        with_shadows = [
            version
            for version in matching
            if version.status == SHADOW
            or (version.status == PUBLISHED and version.rule_key not in rules.shadow_rules)
        ]
        shadow_decider = _choose(with_shadows, policy)
    else:
        shadow_decider = decider
    shadow_outcome = shadow_decider.outcome if shadow_decider else policy.default_outcome

    deciders = _deciders(live, policy, decider)
    actions: list[dict[str, Any]] = []
    if any(version.actions for version in deciders):
        # An action's `to` may read variables no condition reads: it gets the whole context.
        full_context = build_context(
            build_variables(
                event_type=event_type,
                payload=payload,
                received_at=received_at,
                lists=lists,
                risk=risk,
                history=history,
            ),
            sets=lists,
        )
        actions = _resolve_actions(deciders, full_context)
    return EngineResult(
        outcome=outcome,
        matched=decider,
        shadow_outcome=shadow_outcome,
        rules=rules,
        results=results,
        errors=errors,
        decider_ids={version.version_id for version in deciders},
        actions=actions,
        engine_us=round((time.perf_counter_ns() - started) / 1000, 2),
    )


def _candidates(rules: RuleSet, payload: Mapping[str, Any]) -> list[int]:
    """The versions (indices, in order) that the payload's string fields do not rule out."""
    if not rules.string_groups and not rules.integer_groups:
        return list(rules.ungrouped)
    candidates = list(rules.ungrouped)
    get = payload.get
    for field, by_text, group in rules.string_groups:
        value = get(field)
        if value.__class__ is str:
            candidates.extend(by_text.get(value, ()))
        else:
            candidates.extend(group)
    for field, comparison, literals, indices in rules.integer_groups:
        value = get(field)
        if value.__class__ is not int or not -_INT64 <= value < _INT64:
            candidates.extend(indices)
        elif comparison is operator.gt:  # literal < value
            candidates.extend(indices[: bisect_left(literals, value)])
        elif comparison is operator.ge:  # literal <= value
            candidates.extend(indices[: bisect_right(literals, value)])
        elif comparison is operator.lt:  # literal > value
            candidates.extend(indices[bisect_right(literals, value) :])
        else:  # operator.le: literal >= value
            candidates.extend(indices[bisect_left(literals, value) :])
    candidates.sort()
    return candidates


def _event_context(
    rules: RuleSet,
    event_type: str,
    payload: Mapping[str, Any],
    received_at: datetime,
    lists: Mapping[str, Sequence[Any]],
    risk: RiskInput | None,
    history: Mapping[str, Mapping[str, Any]] | None,
) -> Any:
    variables = build_variables(
        event_type=event_type,
        payload=payload,
        received_at=received_at,
        lists={name: lists[name] for name in rules.lists_whole if name in lists},
        risk=risk,
        history=history,
    )
    if rules.event_fields is not None and isinstance(payload, Mapping):
        variables["event"] = {name: payload[name] for name in rules.event_fields if name in payload}
    return build_context(variables, sets=lists, needed=rules.variables)


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
