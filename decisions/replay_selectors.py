"""Replay: a stored decision evaluated again against the versions, lists and history it was
decided with, and compared field by field (the reasons and the risk input it needs too)."""

from collections.abc import Mapping, Sequence
from typing import Any

from decisions import engine, reasons, rollouts, similarity
from decisions.exceptions import (
    ReplayUnavailable,
)
from decisions.models import (
    Decision,
)
from decisions.selectors import compiled_version, versions_by_id
from records import selectors as records_selectors


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
    risk_drivers: tuple[Sequence[Mapping[str, Any]], Mapping[str, str]] | None,
) -> list[dict[str, Any]]:
    """The reason codes of a decision: its deciding rules, then the drivers towards risk
    (`risk_drivers`: the scoring record's drivers and their texts, as
    records.selectors.record_drivers_explained gives them)."""
    deciders = [
        (entry["rule"], rule_names.get(entry["rule"], entry["rule"]))
        for entry in trace
        if entry["decided"]
    ]
    drivers, texts = risk_drivers or (None, None)
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
        risk_drivers=(
            records_selectors.record_drivers_with_texts(record_id=decision.risk_record_id)
            if decision.risk_record_id is not None
            else None
        ),
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
