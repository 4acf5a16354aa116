"""Reads shared by the API, the pages, the admin and the services.

Over 500 lines for now: the review queue, history and roll-out reads joined this module in one
session; splitting it by concern (rules, decisions, reviews) is the next clean-up.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.postgres.aggregates import ArrayAgg
from django.db import connection
from django.db.models import Count, F, Min, Q, QuerySet
from django.db.models.fields.json import KT
from django.utils import timezone

from campaigns import selectors as campaigns_selectors
from core import telemetry
from core.errors import DomainError, NotFound
from core.models import AuditEntry
from core.timeseries import date_bin
from decisions import engine, reasons, rollouts, similarity
from decisions.exceptions import (
    BacktestNotFound,
    DecisionNotFound,
    NamedListNotFound,
    PolicyNotFound,
    ReplayUnavailable,
    ReviewCaseNotFound,
    RuleNotFound,
    RuleVersionNotFound,
)
from decisions.models import (
    Backtest,
    Decision,
    NamedList,
    Policy,
    ReviewCase,
    Rule,
    RuleVersion,
    VelocityAggregate,
    WebhookDelivery,
)
from records import selectors as records_selectors

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


def decision_risk_input(*, decision: Decision) -> engine.RiskInput | None:
    """The risk score and label the decision's rules saw, if the event was scored."""
    if decision.risk_score is None:
        return None
    return engine.RiskInput(score=decision.risk_score, label=decision.risk_label)


def history_variables(history: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The variables rules read from a decision's stored history (velocity, similar)."""
    variables: dict[str, dict[str, Any]] = {}
    if "velocity" in history:
        variables["velocity"] = dict(history["velocity"])
    if "similar" in history:
        variables["similar"] = similarity.similar_variables(history["similar"])
    return variables


def decision_reevaluate(
    *,
    decision: Decision,
    versions: list[engine.CompiledVersion],
    lists: Mapping[str, Sequence[Any]],
    history: Mapping[str, Any] | None = None,
) -> engine.EngineResult:
    """Decide a stored decision's event again, with its policy, risk and history (velocity and
    similar cases as stored, unless `history` says otherwise) and the given rules."""
    event = decision.event
    return engine.decide(
        event_type=event.type,
        payload=event.payload,
        received_at=event.received_at,
        versions=versions,
        policy=engine.PolicySpec.from_json(decision.policy),
        lists=lists,
        risk=decision_risk_input(decision=decision),
        history=history_variables(decision.history if history is None else history),
    )


def decision_reasons(
    *,
    outcome: str,
    trace: Sequence[Mapping[str, Any]],
    rule_names: Mapping[str, str],
    risk_record_id: int | None,
) -> list[dict[str, Any]]:
    """The reason codes of a decision: its deciding rules, then the drivers towards risk."""
    deciders = [
        (entry["rule"], rule_names.get(entry["rule"], entry["rule"]))
        for entry in trace
        if entry["decided"]
    ]
    drivers, texts = (
        records_selectors.record_drivers_with_texts(record_id=risk_record_id)
        if risk_record_id is not None
        else (None, None)
    )
    return reasons.reasons_for(
        outcome=outcome, deciders=deciders, drivers=drivers, driver_texts=texts
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
    replayed_reasons = decision_reasons(
        outcome=result.outcome,
        trace=result.trace,
        rule_names={version.rule.key: version.rule.name for version in by_id.values()},
        risk_record_id=decision.risk_record_id,
    )
    if reasons.comparable(replayed_reasons) != reasons.comparable(decision.reasons):
        differences.append("reasons differ")
    differences.extend(rollouts.arm_differences(arms=decision.arms, payload=decision.event.payload))
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
            "reasons": replayed_reasons,
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


# --- Review queue ------------------------------------------------------------------------------

# How the queue may be ordered: oldest first (ties: riskiest), or riskiest first (ties: oldest).
REVIEW_ORDERINGS: dict[str, tuple[Any, ...]] = {
    "age": ("opened_at", F("risk_score").desc(nulls_last=True), "id"),
    "risk": (F("risk_score").desc(nulls_last=True), "opened_at", "id"),
}


def review_case_list(*, status: str | None = "open", ordering: str = "age") -> QuerySet[ReviewCase]:
    """The queue (open cases by default), each with its decision, event and deciding rule."""
    cases = ReviewCase.objects.select_related("decision__event", "decision__matched_version__rule")
    if status:
        cases = cases.filter(status=status)
    return cases.order_by(*REVIEW_ORDERINGS.get(ordering, REVIEW_ORDERINGS["age"]))


def review_case_get(*, case_id: int) -> ReviewCase:
    case = review_case_list(status=None).filter(pk=case_id).first()
    if case is None:
        raise ReviewCaseNotFound(f"No review case {case_id}.")
    return case


def review_queue_stats() -> tuple[int, float]:
    """(open cases, age in seconds of the oldest one; 0 when the queue is empty), for metrics."""
    stats = ReviewCase.objects.filter(status=ReviewCase.Status.OPEN).aggregate(
        size=Count("id"), oldest=Min("opened_at")
    )
    if not stats["oldest"]:
        return 0, 0.0
    return stats["size"], max(0.0, (timezone.now() - stats["oldest"]).total_seconds())


def review_queue_reading() -> telemetry.ReviewQueueReading:
    """The review queue as the Prometheus gauges read it at each scrape."""
    size, oldest = review_queue_stats()
    return telemetry.ReviewQueueReading(size=size, oldest_age_seconds=oldest)


def customer_earlier_decisions(*, decision: Decision, limit: int = 20) -> list[Decision]:
    """The decisions of the same customer's earlier events of the same type, newest first.

    The customer is the payload field DECISIONS_CUSTOMER_FIELD names (e.g. `customer_id`); an
    event without it has no history to show.
    """
    field = settings.DECISIONS_CUSTOMER_FIELD
    customer = (decision.event.payload or {}).get(field)
    if customer is None or isinstance(customer, (dict, list)):
        return []
    return list(
        Decision.objects.select_related("event", "matched_version__rule", "review_case")
        .filter(
            event__type=decision.event_type,
            event__payload__contains={field: customer},
            event__received_at__lt=decision.event.received_at,
        )
        .order_by("-decided_at", "-id")[:limit]
    )


def decision_risk_record(*, decision: Decision) -> Any:
    """The prediction record behind the decision's score (with its drivers), if any."""
    if decision.risk_record_id is None:
        return None
    try:
        return records_selectors.record_get(record_id=decision.risk_record_id)
    except DomainError:
        return None  # deleted by retention: the score stays on the decision


def decision_webhooks(*, decision: Decision) -> list[WebhookDelivery]:
    """The webhook deliveries of the decision's actions, each with its attempts."""
    return list(
        WebhookDelivery.objects.filter(decision=decision)
        .select_related("endpoint")
        .prefetch_related("tries")
        .order_by("action_index")
    )
