"""Reads shared by the API, the pages, the admin and the services."""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.postgres.aggregates import ArrayAgg
from django.db.models import Count, Q, QuerySet

from campaigns import selectors as campaigns_selectors
from core.models import AuditEntry
from core.timeseries import date_bin
from decisions import engine
from decisions.exceptions import (
    BacktestNotFound,
    DecisionNotFound,
    ReplayUnavailable,
    RuleNotFound,
    RuleVersionNotFound,
)
from decisions.models import Backtest, Decision, NamedList, Policy, Rule, RuleVersion

ACTIVE_STATUSES = (RuleVersion.Status.PUBLISHED, RuleVersion.Status.SHADOW)


def policy_spec_for(*, event_type: str) -> engine.PolicySpec:
    """The event type's policy, or the default one (first_match, approve) when it has none."""
    policy = Policy.objects.filter(event_type=event_type).first()
    if policy is None:
        return engine.PolicySpec(event_type=event_type)
    return engine.PolicySpec(
        event_type=event_type,
        strategy=policy.strategy,
        default_outcome=policy.default_outcome,
        precedence=tuple(policy.outcome_precedence or ()),
    )


def compiled_version(version: RuleVersion, *, status: str | None = None) -> engine.CompiledVersion:
    """The engine's view of a version (`status` overrides its role, e.g. a draft as candidate)."""
    return engine.CompiledVersion(
        version_id=version.pk,
        rule_key=version.rule.key,
        number=version.number,
        status=status or version.status,
        priority=version.priority,
        outcome=version.outcome,
        program=engine.program_for(version.pk, version.condition),
        actions=tuple(version.actions or ()),
        list_names=tuple(version.list_names or ()),
    )


def live_rule_versions(*, event_type: str, at: datetime) -> list[RuleVersion]:
    """Published and shadow versions of the event type that are in effect at `at`."""
    return list(
        RuleVersion.objects.filter(rule__event_type=event_type, status__in=ACTIVE_STATUSES)
        .filter(Q(effective_from__isnull=True) | Q(effective_from__lte=at))
        .filter(Q(effective_until__isnull=True) | Q(effective_until__gt=at))
        .select_related("rule")
    )


def live_versions_for(*, event_type: str, at: datetime) -> list[engine.CompiledVersion]:
    """The live versions as the engine sees them (programs cached per version)."""
    return [
        compiled_version(version) for version in live_rule_versions(event_type=event_type, at=at)
    ]


def versions_by_id(*, version_ids: Iterable[int]) -> dict[int, RuleVersion]:
    return {
        version.pk: version
        for version in RuleVersion.objects.filter(pk__in=list(version_ids)).select_related("rule")
    }


def typed_list_value(value: str, value_type: str) -> Any:
    if value_type == NamedList.ValueType.INTEGER:
        return int(value)
    if value_type == NamedList.ValueType.DOUBLE:
        return float(value)
    return value


def list_contents(*, names: Iterable[str]) -> dict[str, dict[str, Any]]:
    """{name: {"version": n, "values": [...]}} for the named lists that exist, in one query."""
    wanted = sorted(set(names))
    if not wanted:
        return {}
    rows = NamedList.objects.filter(name__in=wanted).annotate(
        raw_values=ArrayAgg(
            "items__value",
            filter=Q(items__isnull=False),
            order_by="items__value",
            default=[],
        )
    )
    return {
        row.name: {
            "version": row.version,
            "values": [typed_list_value(value, row.value_type) for value in row.raw_values],
        }
        for row in rows
    }


def decision_list(
    *,
    outcome: str | None = None,
    event_type: str | None = None,
    rule_key: str | None = None,
    decided_after: datetime | None = None,
    decided_before: datetime | None = None,
) -> QuerySet[Decision]:
    """Decisions, newest first, with their event and matched rule in the same query."""
    decisions = Decision.objects.select_related("event", "matched_version__rule")
    if outcome:
        decisions = decisions.filter(outcome=outcome)
    if event_type:
        decisions = decisions.filter(event_type=event_type)
    if rule_key:
        decisions = decisions.filter(matched_version__rule__key=rule_key)
    if decided_after:
        decisions = decisions.filter(decided_at__gte=decided_after)
    if decided_before:
        decisions = decisions.filter(decided_at__lt=decided_before)
    return decisions.order_by("-decided_at", "-id")


def decision_get(*, decision_id: int) -> Decision:
    decision = (
        Decision.objects.select_related("event", "matched_version__rule")
        .filter(pk=decision_id)
        .first()
    )
    if decision is None:
        raise DecisionNotFound(f"No decision {decision_id}.")
    return decision


def decision_risk_input(*, decision: Decision) -> engine.RiskInput | None:
    """The risk score and label the decision's rules saw, if the event was scored."""
    if decision.risk_score is None:
        return None
    return engine.RiskInput(score=decision.risk_score, label=decision.risk_label)


def decision_reevaluate(
    *,
    decision: Decision,
    versions: list[engine.CompiledVersion],
    lists: Mapping[str, Sequence[Any]],
) -> engine.EngineResult:
    """Decide a stored decision's event again, with its policy and risk and the given rules."""
    event = decision.event
    return engine.decide(
        event_type=event.type,
        payload=event.payload,
        received_at=event.received_at,
        versions=versions,
        policy=engine.PolicySpec.from_json(decision.policy),
        lists=lists,
        risk=decision_risk_input(decision=decision),
    )


def _action_identity(action: Mapping[str, Any]) -> tuple[Any, ...]:
    return (action.get("type"), action.get("rule"), action.get("version"), action.get("to"))


def decision_replay(*, decision: Decision) -> dict[str, Any]:
    """Re-evaluate a stored event against the exact versions, lists and policy it was decided
    with; reports whether outcome and trace match. Reads only: nothing is written."""
    purged_at = decision.event.payload_purged_at
    if purged_at is not None:
        raise ReplayUnavailable(
            f"Event {decision.event_id}'s payload was blanked by retention on "
            f"{purged_at:%Y-%m-%d}; its decision can no longer be replayed.",
            errors={"event": ["Payload purged by retention."]},
        )
    by_id = versions_by_id(version_ids=[entry["version_id"] for entry in decision.trace])
    versions = [
        compiled_version(by_id[entry["version_id"]], status=entry["status"])
        for entry in decision.trace
        if entry["version_id"] in by_id
    ]
    result = decision_reevaluate(
        decision=decision,
        versions=versions,
        lists={name: content["values"] for name, content in decision.lists_snapshot.items()},
    )
    differences = []
    if result.outcome != decision.outcome:
        differences.append(f"outcome {decision.outcome} became {result.outcome}")
    replayed_match = result.matched.version_id if result.matched else None
    if replayed_match != decision.matched_version_id:
        differences.append(f"matched version {decision.matched_version_id} became {replayed_match}")
    if result.shadow_outcome != decision.shadow_outcome:
        differences.append(
            f"shadow outcome {decision.shadow_outcome} became {result.shadow_outcome}"
        )
    stored_trace = engine.comparable(decision.trace)
    replayed_trace = engine.comparable(result.trace)
    if stored_trace != replayed_trace:
        differences.extend(
            f"version {stored[0]}: {stored[2]} became {replayed[2]}"
            for stored, replayed in zip(stored_trace, replayed_trace, strict=False)
            if stored != replayed
        )
        if len(stored_trace) != len(replayed_trace):
            differences.append(
                f"{len(stored_trace)} versions evaluated, {len(replayed_trace)} on replay"
            )
    # Compare what the engine decides about actions, not what dispatching added since.
    if [_action_identity(action) for action in result.actions] != [
        _action_identity(action) for action in decision.actions
    ]:
        differences.append("actions differ")
    return {
        "decision_id": decision.pk,
        "matches": not differences,
        "differences": differences,
        "stored": {"outcome": decision.outcome, "matched_version_id": decision.matched_version_id},
        "replayed": {
            "outcome": result.outcome,
            "matched_version_id": replayed_match,
            "shadow_outcome": result.shadow_outcome,
            "trace": result.trace,
            "engine_us": result.engine_us,
        },
    }


def decision_counts_by_outcome(*, since: datetime) -> list[dict[str, Any]]:
    """[{"outcome", "count"}] of decisions made since `since`, most frequent first."""
    rows = (
        Decision.objects.filter(decided_at__gte=since)
        .values("outcome")
        .annotate(count=Count("id"))
        .order_by("-count", "outcome")
    )
    return [{"outcome": row["outcome"], "count": row["count"]} for row in rows]


def decision_counts_over_time(
    *, since: datetime, bucket: timedelta
) -> list[tuple[datetime, str, int]]:
    """(bucket start, outcome, count) of decisions made since `since`: one grouped query."""
    return list(
        Decision.objects.filter(decided_at__gte=since)
        .annotate(bucket=date_bin("decided_at", bucket))
        .values_list("bucket", "outcome")
        .annotate(count=Count("*"))
        .order_by("bucket", "outcome")
    )


def decision_filter_choices() -> dict[str, list[str]]:
    """Values for the filter drop-downs of the decisions page."""
    return {
        "outcomes": sorted(
            set(Decision.objects.values_list("outcome", flat=True).distinct())
            | set(RuleVersion.objects.values_list("outcome", flat=True).distinct())
        ),
        "event_types": sorted(set(Rule.objects.values_list("event_type", flat=True).distinct())),
        "rule_keys": list(Rule.objects.order_by("key").values_list("key", flat=True)),
    }


def rule_list(*, event_type: str | None = None) -> QuerySet[Rule]:
    rules = Rule.objects.prefetch_related("versions__approvals").order_by("event_type", "key")
    if event_type:
        rules = rules.filter(event_type=event_type)
    return rules


def rule_get(*, key: str) -> Rule:
    rule = Rule.objects.filter(key=key).prefetch_related("versions__approvals").first()
    if rule is None:
        raise RuleNotFound(f"No rule with key {key}.", errors={"key": ["Unknown rule."]})
    return rule


def rule_version_get(*, key: str, number: int) -> RuleVersion:
    version = (
        RuleVersion.objects.select_related("rule").filter(rule__key=key, number=number).first()
    )
    if version is None:
        raise RuleVersionNotFound(f"Rule {key} has no version {number}.")
    return version


def backtest_get(*, backtest_id: int) -> Backtest:
    backtest = Backtest.objects.filter(pk=backtest_id).first()
    if backtest is None:
        raise BacktestNotFound(f"No backtest {backtest_id}.")
    return backtest


def audit_entries_for_rule(*, rule: Rule, limit: int = 100) -> QuerySet[AuditEntry]:
    """The rule's own entries and those of its versions (target ids `key:number`)."""
    return AuditEntry.objects.filter(
        Q(target_type="rule", target_id=rule.key)
        | Q(target_type="rule_version", target_id__startswith=f"{rule.key}:")
    ).order_by("-occurred_at", "-id")[:limit]


def audit_entries_for(*, target_type: str, target_id: str, limit: int = 50) -> QuerySet[AuditEntry]:
    return AuditEntry.objects.filter(target_type=target_type, target_id=target_id).order_by(
        "-occurred_at", "-id"
    )[:limit]


@dataclass(frozen=True)
class StaticWarning:
    code: str
    message: str


def _normalised(condition: str) -> str:
    return " ".join(condition.split())


def policy_static_check(*, event_type: str) -> list[StaticWarning]:
    """Warnings about the published rules of an event type: duplicate priorities, dead rules.

    A rule can never decide under first_match when a rule before it always matches (its
    condition is `true`) or has the identical condition and no narrower effective window.
    """
    versions = sorted(
        RuleVersion.objects.filter(
            rule__event_type=event_type, status=RuleVersion.Status.PUBLISHED
        ).select_related("rule"),
        key=lambda version: (version.priority, version.rule.key),
    )
    warnings: list[StaticWarning] = []
    by_priority: dict[int, list[str]] = {}
    for version in versions:
        by_priority.setdefault(version.priority, []).append(version.rule.key)
    for priority, keys in sorted(by_priority.items()):
        if len(keys) > 1:
            warnings.append(
                StaticWarning(
                    "duplicate_priority",
                    f"Rules {', '.join(keys)} share priority {priority}; the key breaks the tie.",
                )
            )
    strategy = policy_spec_for(event_type=event_type).strategy
    if strategy != "first_match":
        return warnings
    for index, version in enumerate(versions):
        for earlier in versions[:index]:
            unbounded = earlier.effective_from is None and earlier.effective_until is None
            if not unbounded:
                continue
            always = _normalised(earlier.condition) == "true"
            same = _normalised(earlier.condition) == _normalised(version.condition)
            if always or same:
                reason = "always matches" if always else "has the identical condition"
                warnings.append(
                    StaticWarning(
                        "unreachable_rule",
                        f"Rule {version.rule.key} (priority {version.priority}) can never "
                        f"decide: {earlier.rule.key} (priority {earlier.priority}) runs first "
                        f"and {reason}.",
                    )
                )
                break
    return warnings


def decision_messages(*, decision: Decision) -> list[Any]:
    """The SMS messages the decision's actions created, with their delivery transitions."""
    references = [f"decision:{decision.pk}:{index}" for index in range(len(decision.actions))]
    if not references:
        return []
    return campaigns_selectors.messages_with_references(references=references)
