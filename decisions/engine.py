"""The decision engine: a rule set compiled once per set of versions, one CEL context per event.

Over 500 lines because the decision types, the rule-set compilation and the hot path read best
together; what a condition lets the engine decide before CEL is decisions/conditions.py.

Pure and deterministic: it reads no clock for decisions (`now` is the event's received time) and
no database, so a decision can be replayed from its stored inputs (event, rule versions, list
contents, policy, risk) and reproduces itself exactly. The services load those inputs and store
the result.

Speed (bench/decisions_engine.py, docs/benchmarks.md): a `RuleSet` holds the versions in
evaluation order, each version's trace entry without its result, the variables the conditions
read (the only ones converted into the CEL context) and an index of the conditions' leading
comparisons with literals (`event.<field> == "<text>" && event.<field> > 123 && ...`). CEL
evaluates `&&` left to right and `false && anything` is false, so a condition whose first
comparison not passed fails on a value of the literal's own type is false, and one made only
of passed comparisons is true, without running the program. The index holds those comparisons
as bit masks over the versions, per position in the chain and per (field, comparison): an
event decides each group with one dict lookup or bisection, whatever the number of rules.
Everything else (missing field, another type, any other shape of condition) runs through CEL
as written, so every result is the one CEL gives; only the cost differs. The context is built
only when some condition has to run.
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
    # Per version: its trace entry as it reads when the version is false (the per-event keys
    # `result` "false" and `decided` False): an event copies them and rewrites the others.
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
    # The same checks indexed as bit masks over the versions (bit i: version i), grouped by
    # position in the chain and by (field, comparison): see `_Index`.
    index: "_Index"

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
        true_indices: list[int],
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
        self._true_indices = true_indices
        self._errors = errors
        self._decider_ids = decider_ids

    @cached_property
    def trace(self) -> list[dict[str, Any]]:
        """Every version evaluated, in order, with its result (true / false / error)."""
        # Most versions are false in most events: copying their prebuilt entries costs a third
        # of building each entry from its parts.
        trace = list(map(dict.copy, self._rules.entries))
        decider_ids = self._decider_ids
        for index in self._true_indices:
            entry = trace[index]
            entry["result"] = "true"
            entry["decided"] = entry["version_id"] in decider_ids
        for index, message in self._errors.items():
            entry = trace[index]
            entry["result"] = "error"
            entry["error"] = message
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
                "result": "false",
                "decided": False,
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
        index=_index(chains),
    )


# How a group of checks tells which of its versions pass, from the payload's value: a text
# equality or an integer (in)equality looks the value up in {literal: mask}; an ordering bisects
# the sorted literals and reads a prefix mask (the versions whose literals sort before).
_TEXT, _EQUAL, _UNEQUAL, _ABOVE, _AT_LEAST, _BELOW, _AT_MOST = range(7)
_ORDER_KINDS = {
    operator.gt: _ABOVE,
    operator.ge: _AT_LEAST,
    operator.lt: _BELOW,
    operator.le: _AT_MOST,
}
# (field, kind, sorted literals (orderings) or (), {literal: mask} or prefix masks, group mask)
_Group = tuple[str, int, tuple[int, ...], Any, int]


@dataclass(frozen=True)
class _Index:
    """Every version's leading checks as bit masks, so an event decides them per group of
    checks (one dict lookup or bisection) instead of per version.

    A version's checks run left to right as CEL runs `&&`: the version is false when its first
    check that is not passed is failed on a value of the literal's type; undecided (CEL runs it)
    when that check's value has another type or is missing; true when every check passes and the
    chain is the whole condition; undecided when they pass and more of the condition follows.
    """

    chained: int  # versions with at least one check
    unchained: int  # versions CEL always runs
    complete: int  # versions whose condition is its checks alone
    positions: tuple[tuple[_Group, ...], ...]  # the groups of the first, second, ... checks


def _index(chains: Sequence[Chain | None]) -> _Index:
    chained = unchained = complete = 0
    # Per position: {(field, kind): {literal: mask}}
    positions: list[dict[tuple[str, int], dict[Any, int]]] = []
    for number, chain in enumerate(chains):
        bit = 1 << number
        if chain is None:
            unchained |= bit
            continue
        chained |= bit
        if chain.complete:
            complete |= bit
        for position, (field, comparison, literal) in enumerate(chain.checks):
            if position == len(positions):
                positions.append({})
            if isinstance(literal, str):
                kind = _TEXT
            elif comparison is operator.eq:
                kind = _EQUAL
            elif comparison is operator.ne:
                kind = _UNEQUAL
            else:
                kind = _ORDER_KINDS[comparison]
            by_literal = positions[position].setdefault((field, kind), {})
            by_literal[literal] = by_literal.get(literal, 0) | bit
    return _Index(
        chained=chained,
        unchained=unchained,
        complete=complete,
        positions=tuple(
            tuple(_group(field, kind, by_literal) for (field, kind), by_literal in groups.items())
            for groups in positions
        ),
    )


def _group(field: str, kind: int, by_literal: dict[Any, int]) -> _Group:
    mask = 0
    for versions in by_literal.values():
        mask |= versions
    if kind in (_TEXT, _EQUAL, _UNEQUAL):
        return (field, kind, (), by_literal, mask)
    literals = tuple(sorted(by_literal))
    prefixes = [0]
    for literal in literals:
        prefixes.append(prefixes[-1] | by_literal[literal])
    return (field, kind, literals, tuple(prefixes), mask)


def _checked(index: _Index, payload: Mapping[str, Any]) -> tuple[int, int]:
    """The versions the checks make true, and those CEL must run (the rest are false)."""
    alive = index.chained
    undecided = index.unchained
    get = payload.get
    for groups in index.positions:
        failed = unknown = 0
        for field, kind, literals, masks, mask in groups:
            value = get(field)
            if kind is _TEXT:
                if value.__class__ is str:
                    failed |= mask ^ masks.get(value, 0)
                else:
                    unknown |= mask
                continue
            if value.__class__ is not int or not -_INT64 <= value < _INT64:
                unknown |= mask  # not a value Python compares as CEL does: CEL decides
            elif kind is _ABOVE:  # literal < value
                failed |= mask ^ masks[bisect_left(literals, value)]
            elif kind is _AT_LEAST:  # literal <= value
                failed |= mask ^ masks[bisect_right(literals, value)]
            elif kind is _BELOW:  # literal > value
                failed |= masks[bisect_right(literals, value)]
            elif kind is _AT_MOST:  # literal >= value
                failed |= masks[bisect_left(literals, value)]
            elif kind is _EQUAL:
                failed |= mask ^ masks.get(value, 0)
            else:
                failed |= masks.get(value, 0)
        undecided |= alive & unknown
        alive &= ~(failed | unknown)
        if not alive:
            break
    passed = alive & index.complete
    return passed, undecided | (alive ^ passed)


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
    if isinstance(payload, Mapping):
        passed, undecided = _checked(rules.index, payload)
    else:
        passed, undecided = 0, (1 << count) - 1
    results = ["false"] * count
    errors: dict[int, str] = {}
    matching: list[CompiledVersion] = []
    true_indices: list[int] = []
    context = None
    ordered = rules.versions
    pending = passed | undecided
    while pending:
        bit = pending & -pending
        pending ^= bit
        index = bit.bit_length() - 1
        version = ordered[index]
        if passed & bit:
            results[index] = "true"
            true_indices.append(index)
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
            true_indices.append(index)
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
        true_indices=true_indices,
        errors=errors,
        decider_ids={version.version_id for version in deciders},
        actions=actions,
        engine_us=round((time.perf_counter_ns() - started) / 1000, 2),
    )


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
