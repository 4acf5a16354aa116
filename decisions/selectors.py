"""Reads shared by the API, the pages, the admin and the services: rules, versions, lists,
policies and decisions. Replay lives in `replay_selectors`, the review queue in
`review_selectors`, the rule pages' reads in `rule_selectors`.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.postgres.aggregates import ArrayAgg
from django.db import connection
from django.db.models import Count, Q, QuerySet
from django.db.models.fields.json import KT

from campaigns import selectors as campaigns_selectors
from core.errors import NotFound
from core.models import AuditEntry
from core.timeseries import date_bin
from decisions import engine, rollouts
from decisions.exceptions import (
    BacktestNotFound,
    DecisionNotFound,
    NamedListNotFound,
    PolicyNotFound,
    RuleNotFound,
    RuleVersionNotFound,
)
from decisions.models import (
    Backtest,
    Decision,
    NamedList,
    Policy,
    Rule,
    RuleVersion,
    VelocityAggregate,
)

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


def rollout_rule_versions(*, event_type: str) -> list[RuleVersion]:
    """Every version of the event type that may decide or shadow (rollouts.live_set picks)."""
    return list(
        RuleVersion.objects.filter(
            rule__event_type=event_type, status__in=rollouts.ROLLOUT_STATUSES
        ).select_related("rule")
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


def named_list_list() -> QuerySet[NamedList]:
    """Every named list with its size (`item_count`), by name."""
    return NamedList.objects.annotate(item_count=Count("items")).order_by("name")


def named_list_get(*, name: str) -> NamedList:
    """A named list with its size and its values (`values`, sorted as stored text)."""
    named_list = named_list_list().filter(name=name).first()
    if named_list is None:
        raise NamedListNotFound(f"No list {name}.", errors={"name": ["Unknown list."]})
    named_list.values = [  # type: ignore[attr-defined]
        typed_list_value(value, named_list.value_type)
        for value in named_list.items.order_by("value").values_list("value", flat=True)
    ]
    return named_list


def policy_list() -> QuerySet[Policy]:
    return Policy.objects.order_by("event_type")


def policy_get(*, event_type: str) -> Policy:
    policy = Policy.objects.filter(event_type=event_type).first()
    if policy is None:
        raise PolicyNotFound(
            f"No policy for {event_type}; its events use the default (first_match, approve).",
            errors={"event_type": ["No policy."]},
        )
    return policy


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


def _decision_outcomes() -> list[str]:
    """The distinct outcomes of all decisions, one index probe per outcome (a loose index scan
    of decision_outcome_idx): a handful of rows read however many decisions there are, where
    DISTINCT reads every index entry (30-50 ms at 100,000 decisions)."""
    table = Decision._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH RECURSIVE found (outcome) AS (
                (SELECT outcome FROM {table} ORDER BY outcome LIMIT 1)
                UNION ALL
                SELECT (
                    SELECT outcome FROM {table} WHERE outcome > found.outcome
                    ORDER BY outcome LIMIT 1
                ) FROM found WHERE found.outcome IS NOT NULL
            )
            SELECT outcome FROM found WHERE outcome IS NOT NULL
            """  # noqa: S608 (the table name is the model's, no input)
        )
        return [row[0] for row in cursor.fetchall()]


def decision_filter_choices() -> dict[str, list[str]]:
    """Values for the filter drop-downs of the decisions page."""
    return {
        "outcomes": sorted(
            set(_decision_outcomes())
            # order_by(): a model's default ordering would join DISTINCT and make rows distinct.
            | set(RuleVersion.objects.order_by().values_list("outcome", flat=True).distinct())
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


def canary_comparison(*, rule: Rule) -> dict[str, dict[str, Any]] | None:
    """The outcomes of the rule's running canary against its control, over the decisions made
    since the canary started: {"canary" | "control": {"total", "outcomes": {outcome: n}}}."""
    canary = rule.versions.filter(status=RuleVersion.Status.CANARY).first()
    if canary is None:
        return None
    decisions = Decision.objects.filter(event_type=rule.event_type)
    if canary.status_changed_at is not None:
        decisions = decisions.filter(decided_at__gte=canary.status_changed_at)
    rows = (
        decisions.filter(**{f"arms__{rule.key}__canary_version_id": canary.pk})
        .values("outcome", arm=KT(f"arms__{rule.key}__arm"))
        .annotate(count=Count("id"))
        .order_by("arm", "-count", "outcome")
    )
    comparison: dict[str, dict[str, Any]] = {
        arm: {"total": 0, "outcomes": {}} for arm in ("canary", "control")
    }
    for row in rows:
        arm = comparison[row["arm"]]
        arm["outcomes"][row["outcome"]] = row["count"]
        arm["total"] += row["count"]
    comparison["canary"].update(version=canary.number, percent=canary.canary_percent)
    return comparison


def rule_version_get(*, key: str, number: int) -> RuleVersion:
    version = (
        RuleVersion.objects.select_related("rule").filter(rule__key=key, number=number).first()
    )
    if version is None:
        raise RuleVersionNotFound(f"Rule {key} has no version {number}.")
    return version


def velocity_aggregate_list(*, event_type: str | None = None) -> QuerySet[VelocityAggregate]:
    aggregates = VelocityAggregate.objects.select_related("policy").order_by(
        "policy__event_type", "name"
    )
    if event_type:
        aggregates = aggregates.filter(policy__event_type=event_type)
    return aggregates


def velocity_readers(*, event_type: str, name: str) -> list[str]:
    """The rule versions ("key vN") not retired that read velocity.<name>."""
    return sorted(
        f"{key} v{number}"
        for key, number in RuleVersion.objects.filter(rule__event_type=event_type)
        .exclude(status=RuleVersion.Status.RETIRED)
        .filter(velocity_names__contains=[name])
        .values_list("rule__key", "number")
    )


def velocity_aggregate_get(*, aggregate_id: int) -> VelocityAggregate:
    aggregate = VelocityAggregate.objects.select_related("policy").filter(pk=aggregate_id).first()
    if aggregate is None:
        raise NotFound(f"No velocity aggregate {aggregate_id}.")
    return aggregate


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
