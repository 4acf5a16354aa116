"""Events in, decisions out: register an event, score it, decide it, send its actions.

Other apps are reached only here: `event_risk_score` scores through records,
`decision_actions_dispatch` sends through campaigns.
"""

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from campaigns import services as campaigns_services
from core import telemetry
from core.errors import DomainError, InvalidInput, NotFound
from core.json import json_for_database
from core.rows import row_insert
from decisions import engine, replay_selectors, selectors, similarity, velocity
from decisions.exceptions import DuplicateEvent
from decisions.live_rules import RULES_GENERATION_SQL, LiveRules, live_rules_for
from decisions.models import Decision, Event, RuleVersion
from decisions.services.reviews import review_case_open
from decisions.services.shared import raise_validation
from decisions.services.webhooks import webhook_delivery_create
from records import selectors as records_selectors
from records import services as records_services

MAX_PAYLOAD_KEYS = 500
EVENT_KEY_CONSTRAINT = "event_unique_idempotency_key"
# What a rule's CEL costs grows with the size of the payload values it touches: the CEL runtime
# copies a nested list or object each time an expression reads it, and a comprehension runs its
# body once per item. Measured (common-expression-language 0.10, two shared cores): 150 reads
# of a 25,600-value list cost ~1.2 s, of a 256-item list of numbers ~1 ms; a 3,800-character
# comprehension body over 256 small objects ~15-30 ms. So lists are capped, and so is the
# payload's count of values; core.expressions caps how often an expression reads a variable (16)
# and a comprehension body (400 characters): core/tests/test_expression_bounds.py measures the
# worst accepted expression on the largest accepted payload.
MAX_PAYLOAD_LIST_ITEMS = 256
MAX_PAYLOAD_VALUES = 2_000


def _payload_bounds_check(payload: dict[str, Any]) -> None:
    """Refuse a list longer than MAX_PAYLOAD_LIST_ITEMS (naming it) or too many values."""
    pending: list[tuple[str, Any]] = [("payload", payload)]
    seen = 0
    while pending:
        path, value = pending.pop()
        seen += 1
        if seen > MAX_PAYLOAD_VALUES:
            raise InvalidInput(
                f"payload holds more than {MAX_PAYLOAD_VALUES} values.",
                errors={"payload": [f"At most {MAX_PAYLOAD_VALUES} values in all."]},
            )
        if isinstance(value, list):
            if len(value) > MAX_PAYLOAD_LIST_ITEMS:
                raise InvalidInput(
                    f"{path} has {len(value)} items; a list in a payload holds at most "
                    f"{MAX_PAYLOAD_LIST_ITEMS}.",
                    errors={path: [f"At most {MAX_PAYLOAD_LIST_ITEMS} items."]},
                )
            pending.extend((f"{path}[{index}]", item) for index, item in enumerate(value))
        elif isinstance(value, dict):
            pending.extend((f"{path}.{key}", item) for key, item in value.items())


def _validated_event_input(
    *, payload: Any, risk_request: Any
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    if not isinstance(payload, dict):
        raise InvalidInput("payload must be a JSON object.", errors={"payload": ["Not an object."]})
    if len(payload) > MAX_PAYLOAD_KEYS:
        raise InvalidInput(
            f"payload has more than {MAX_PAYLOAD_KEYS} keys.", errors={"payload": ["Too large."]}
        )
    _payload_bounds_check(payload)
    if risk_request is not None:
        if not isinstance(risk_request, dict) or not isinstance(risk_request.get("model_id"), str):
            raise InvalidInput(
                "risk needs a model_id and features.", errors={"risk.model_id": ["Required."]}
            )
        if not isinstance(risk_request.get("features", {}), dict):
            raise InvalidInput(
                "risk.features must be an object.", errors={"risk.features": ["Not an object."]}
            )
    # JSON round trip: the engine sees exactly what the database returns on a replay.
    return json_for_database(payload, field="payload"), (
        json_for_database(risk_request, field="risk") if risk_request is not None else None
    )


def event_risk_score(
    *, event: Event
) -> tuple[engine.RiskInput | None, records_services.PredictionRecord | None]:
    """Score the event when it names a risk model: (risk for the rules, its scoring record).

    Runs inside event_register's transaction, so the prediction record rolls back with the
    event. Bad features or an unknown model reject the event with the fields named under
    `risk.` (nothing is stored); an event without `risk` is decided without a score.
    """
    if not event.risk_request:
        return None, None
    try:
        record = records_services.record_predict(
            model_id=event.risk_request["model_id"],
            features=event.risk_request.get("features", {}),
            version=event.risk_request.get("version"),
            source="decision",
            event_id=event.pk,
        )
    except DomainError as error:
        errors = {f"risk.{field}": messages for field, messages in error.errors.items()}
        # An unknown model stays a 404, as on /predict/; bad features are the event's 400.
        problem = NotFound if error.status == 404 else InvalidInput
        raise problem(f"The event cannot be scored: {error.detail}", errors=errors) from error
    return engine.RiskInput(score=record.risk_score, label=record.risk_label), record


def decision_actions_dispatch(*, decision: Decision) -> None:
    """Send the decision's SMS actions through campaigns and queue its webhook actions, recording
    each outcome on the decision.

    Inside event_register's transaction: campaigns creates the message rows now and enqueues the
    sends on commit, so a rollback leaves no message and no task. Each action's reference is
    `decision:<id>:<n>`, so a message is never created twice for the same decision. A recipient
    who opted out gets a canceled message (recorded as such); an action that cannot be sent
    (bad number, template error) is recorded as failed and never fails the decision.
    """
    if not decision.actions:
        return
    context = {
        "event": decision.event.payload,
        "event_type": decision.event.type,
        "outcome": decision.outcome,
        "risk": {"score": decision.risk_score, "label": decision.risk_label},
    }
    for index, action in enumerate(decision.actions):
        if action.get("error"):
            continue
        if action.get("type") == "webhook":
            _webhook_action_dispatch(decision=decision, index=index, action=action)
            continue
        if action.get("type") != "sms":
            continue
        try:
            with transaction.atomic():
                message = campaigns_services.transactional_message_send(
                    phone=str(action["to"]),
                    template_key=action["template"],
                    context=context,
                    topic=action.get("topic") or "transactional",
                    reference=f"decision:{decision.pk}:{index}",
                )
        except DomainError as error:
            action.update(status="failed", error=error.detail)
            continue
        action.update(status=message.status, message_id=message.pk)
        if message.cancel_reason:
            action["reason"] = message.cancel_reason
    decision.save(update_fields=["actions"])


def _webhook_action_dispatch(*, decision: Decision, index: int, action: dict[str, Any]) -> None:
    """One delivery row per (decision, action), sent after commit; an endpoint switched off
    since the rule was saved is recorded as a failed action and never fails the decision."""
    try:
        delivery = webhook_delivery_create(
            decision=decision, action_index=index, endpoint_name=action["endpoint"]
        )
    except DomainError as error:
        action.update(status="failed", error=error.detail)
        return
    action.update(status="queued", delivery_id=delivery.pk)


def event_register(
    *,
    event_type: str,
    payload: Any,
    idempotency_key: str,
    client_scope: str,
    fingerprint: str,
    risk_request: Any = None,
) -> Decision:
    """Store an event and its decision together (both or neither); one per idempotency key.

    Inside a caller's transaction (the Idempotency-Key's) it takes no savepoint: a savepoint
    cost two round trips per event, and an error here fails the caller's work anyway. A caller
    that wants to carry on after a failed event wraps the call in its own atomic()."""
    clean_payload, clean_risk = _validated_event_input(payload=payload, risk_request=risk_request)
    event = Event(
        type=event_type,
        payload=clean_payload,
        risk_request=clean_risk,
        idempotency_key=idempotency_key,
        client_scope=client_scope,
        fingerprint=fingerprint,
        received_at=timezone.now(),
    )
    try:
        event.full_clean(validate_unique=False, validate_constraints=False)
    except ValidationError as error:
        raise_validation(error)
    try:
        return _event_decide_and_store(event)
    except IntegrityError as error:
        # The key's event exists: caught here, outside the transaction that the failed INSERT
        # broke, so the event's INSERT needs no savepoint of its own.
        constraint = getattr(getattr(error.__cause__, "diag", None), "constraint_name", None)
        if constraint != EVENT_KEY_CONSTRAINT:
            raise
        raise DuplicateEvent(
            "An event with this Idempotency-Key was already registered.",
            errors={"Idempotency-Key": ["Already used."]},
        ) from None


@transaction.atomic(savepoint=False)
def _event_decide_and_store(event: Event) -> Decision:
    # The rules generation comes back with the event's id: one round trip for both.
    generation = row_insert(event, also_return=RULES_GENERATION_SQL)
    risk, risk_record = event_risk_score(event=event)
    decision = _decide_and_store(
        event=event, risk=risk, risk_record=risk_record, rules_generation=generation
    )
    review_case_open(decision=decision)
    decision_actions_dispatch(decision=decision)
    return decision


def _history_compute(
    *,
    event: Event,
    rows: list[RuleVersion],
    live_rules: LiveRules,
    risk_record_id: int | None,
) -> dict[str, Any]:
    """What the live rules read beyond the event: velocity aggregates and similar cases, each
    computed only when some live version reads it (and similar cases only for a scored event)."""
    history: dict[str, Any] = {}
    names = {name for row in rows for name in row.velocity_names}
    if names:
        values = velocity.velocity_for_history(
            event=event, aggregates=live_rules.aggregates_named(names)
        )
        if values is not None:
            history["velocity"] = dict(values)
    if risk_record_id is not None and any(row.reads_similar for row in rows):
        history["similar"] = similarity.similar_cases(record_id=risk_record_id)
    return history


def _decide_and_store(
    *,
    event: Event,
    risk: engine.RiskInput | None,
    risk_record: records_services.PredictionRecord | None,
    rules_generation: int | None,
) -> Decision:
    risk_record_id = risk_record.pk if risk_record is not None else None
    live_rules = live_rules_for(event_type=event.type, generation=rules_generation)
    policy = live_rules.policy
    live = live_rules.live_set(payload=event.payload, at=event.received_at)
    versions = live_rules.rule_set([(running.row, running.status) for running in live.versions])
    needed = {name for version in versions for name in version.list_names}
    snapshot = selectors.list_contents(names=needed)
    history = _history_compute(
        event=event,
        rows=[running.row for running in live.versions],
        live_rules=live_rules,
        risk_record_id=risk_record_id,
    )
    result = engine.decide(
        event_type=event.type,
        payload=event.payload,
        received_at=event.received_at,
        versions=versions,
        policy=policy,
        lists={name: content["values"] for name, content in snapshot.items()},
        risk=risk,
        history=replay_selectors.history_variables(history),
    )
    telemetry.decision_observe(
        outcome=result.outcome,
        rule=result.matched.rule_key if result.matched else None,
        engine_seconds=result.engine_us / 1_000_000,
    )
    decision = Decision(
        event=event,
        event_type=event.type,
        outcome=result.outcome,
        matched_version=(
            live_rules.rows_by_id[result.matched.version_id] if result.matched else None
        ),
        shadow_outcome=result.shadow_outcome,
        policy=policy.as_json(),
        trace=result.trace,
        lists_snapshot=snapshot,
        actions=[{**action, "status": "pending"} for action in result.actions],
        engine_us=result.engine_us,
        risk_score=risk.score if risk else None,
        risk_label=risk.label if risk else "",
        risk_record_id=risk_record_id,
        history=history,
        reasons=replay_selectors.decision_reasons(
            outcome=result.outcome,
            trace=result.trace,
            rule_names=live_rules.rule_names,
            risk_drivers=(
                records_selectors.record_drivers_explained(risk_record)
                if risk_record is not None
                else None
            ),
        ),
        arms=live.arms,
        decided_at=timezone.now(),
    )
    row_insert(decision)
    return decision
