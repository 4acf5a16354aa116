"""Writes of the decisions app: rules and versions, lists, policies, events, backtests.

Every write is one transaction and writes its audit entry inside it. Other apps are reached
only here: `event_risk_score` scores through records, `decision_actions_dispatch` sends through
campaigns.
"""

import json
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q, QuerySet
from django.db.models.functions import Greatest
from django.utils import timezone

from campaigns import services as campaigns_services
from core.audit import actor_label_for, actor_user_for, audit_record
from core.errors import Conflict, DomainError, InvalidInput
from decisions import engine, selectors
from decisions.exceptions import (
    DuplicateEvent,
    DuplicateRule,
    InvalidActions,
    RuleVersionNotFound,
    RuleVersionStateConflict,
)
from decisions.models import (
    Backtest,
    Decision,
    Event,
    NamedList,
    NamedListItem,
    Policy,
    Rule,
    RuleVersion,
)
from records import services as records_services

MAX_ACTIONS = 10
MAX_ACTION_TEMPLATE = 1600
ACTION_TYPES = {"sms": {"required": ("template", "to"), "optional": ("topic",)}}
MAX_LIST_VALUES = 10_000
MAX_CANDIDATES = 50
MAX_PAYLOAD_KEYS = 500


def _raise_validation(error: ValidationError, *, prefix: str = "") -> None:
    errors = {f"{prefix}{name}": list(messages) for name, messages in error.message_dict.items()}
    first = next(iter(errors.items()))
    raise InvalidInput(f"{first[0]}: {first[1][0]}", errors=errors) from None


def _insert_once(row: Any, *, what: str) -> None:
    """Insert a row whose natural key a concurrent request may have just taken: 409, not 500."""
    try:
        with transaction.atomic():
            row.save()
    except IntegrityError:
        raise Conflict(f"The {what} was created concurrently; retry.") from None


# --- Rules and versions ------------------------------------------------------------------------


def _rule_snapshot(rule: Rule) -> dict[str, Any]:
    return {
        "key": rule.key,
        "name": rule.name,
        "description": rule.description,
        "event_type": rule.event_type,
    }


def _version_snapshot(version: RuleVersion) -> dict[str, Any]:
    return {"number": version.number, "status": version.status, **version.content}


@transaction.atomic
def rule_create(
    *, key: str, name: str, event_type: str, description: str = "", actor: Any = None
) -> Rule:
    """Create a rule (no versions yet); the key is its stable identity."""
    rule = Rule(
        key=key.strip(),
        name=name.strip(),
        event_type=event_type.strip(),
        description=description.strip(),
        created_by=actor_user_for(actor),
    )
    try:
        rule.full_clean()
    except ValidationError as error:
        if "key" in error.message_dict and Rule.objects.filter(key=rule.key).exists():
            raise DuplicateRule(
                f"A rule with key {rule.key} exists.", errors={"key": ["Taken."]}
            ) from None
        _raise_validation(error)
    try:
        with transaction.atomic():
            rule.save()
    except IntegrityError:
        raise DuplicateRule(
            f"A rule with key {rule.key} exists.", errors={"key": ["Taken."]}
        ) from None
    audit_record(
        actor=actor,
        action="rule.create",
        target_type="rule",
        target_id=rule.key,
        after=_rule_snapshot(rule),
    )
    return rule


@transaction.atomic
def rule_update(*, rule: Rule, name: str, description: str, actor: Any = None) -> Rule:
    """Rename or re-describe a rule; its key and event type never change."""
    rule = Rule.objects.select_for_update().get(pk=rule.pk)
    before = _rule_snapshot(rule)
    rule.name = name.strip()
    rule.description = description.strip()
    try:
        rule.full_clean()
    except ValidationError as error:
        _raise_validation(error)
    rule.save(update_fields=["name", "description"])
    audit_record(
        actor=actor,
        action="rule.update",
        target_type="rule",
        target_id=rule.key,
        before=before,
        after=_rule_snapshot(rule),
    )
    return rule


def validate_actions(actions: Any) -> list[dict[str, Any]]:
    """Check the shape of a version's actions; `to` is a CEL expression over the event."""
    if actions in (None, ""):
        return []
    if not isinstance(actions, list):
        raise InvalidActions("Actions must be a list.", errors={"actions": ["Must be a list."]})
    if len(actions) > MAX_ACTIONS:
        raise InvalidActions(
            f"At most {MAX_ACTIONS} actions.", errors={"actions": [f"At most {MAX_ACTIONS}."]}
        )
    cleaned = []
    for index, action in enumerate(actions):
        field = f"actions[{index}]"
        if not isinstance(action, dict):
            raise InvalidActions(f"{field} must be an object.", errors={field: ["Not an object."]})
        spec = ACTION_TYPES.get(action.get("type"))  # type: ignore[arg-type]
        if spec is None:
            known = ", ".join(sorted(ACTION_TYPES))
            raise InvalidActions(
                f"{field}.type must be one of: {known}.",
                errors={f"{field}.type": [f"One of: {known}."]},
            )
        allowed = {"type", *spec["required"], *spec["optional"]}
        unknown = sorted(set(action) - allowed)
        if unknown:
            raise InvalidActions(
                f"{field} has unknown fields: {', '.join(unknown)}.",
                errors={f"{field}.{name}": ["Unknown field."] for name in unknown},
            )
        for name in (*spec["required"], *spec["optional"]):
            value = action.get(name)
            if name in spec["required"] and (not isinstance(value, str) or not value.strip()):
                raise InvalidActions(
                    f"{field}.{name} is required text.", errors={f"{field}.{name}": ["Required."]}
                )
            if value is not None and (
                not isinstance(value, str) or len(value) > MAX_ACTION_TEMPLATE
            ):
                raise InvalidActions(
                    f"{field}.{name} must be text of at most {MAX_ACTION_TEMPLATE} characters.",
                    errors={f"{field}.{name}": ["Too long or not text."]},
                )
        engine.compile_condition(action["to"], field=f"{field}.to")
        cleaned.append(_json_for_database(dict(action), field=field))
    return cleaned


@transaction.atomic
def rule_version_create(
    *,
    rule: Rule,
    condition: str,
    outcome: str,
    priority: int,
    actions: Sequence[Mapping[str, Any]] | None = None,
    effective_from: datetime | None = None,
    effective_until: datetime | None = None,
    change_note: str = "",
    actor: Any = None,
) -> RuleVersion:
    """Add a draft version; its CEL condition is compiled now and rejected with its position."""
    rule = Rule.objects.select_for_update().get(pk=rule.pk)  # numbers versions one at a time
    # Before full_clean, whose check-constraint error would name no field.
    if effective_from and effective_until and effective_from >= effective_until:
        raise InvalidInput(
            "The effective window ends before it starts.",
            errors={"effective_until": ["Must be after effective_from."]},
        )
    engine.compile_condition(condition)
    list_names = engine.referenced_lists(condition)
    known_lists = set(NamedList.objects.filter(name__in=list_names).values_list("name", flat=True))
    unknown_lists = sorted(set(list_names) - known_lists)
    if unknown_lists:
        # Caught now rather than as an evaluation error on every event.
        raise InvalidInput(
            f"The condition reads unknown list {', '.join(unknown_lists)}; create it first.",
            errors={"condition": [f"Unknown list: {', '.join(unknown_lists)}."]},
        )
    cleaned_actions = validate_actions(actions)
    last = rule.versions.order_by("-number").values_list("number", flat=True).first()
    version = RuleVersion(
        rule=rule,
        number=(last or 0) + 1,
        condition=condition.strip(),
        outcome=(outcome or "").strip(),
        priority=priority,
        actions=cleaned_actions,
        effective_from=effective_from,
        effective_until=effective_until,
        list_names=list_names,
        author=actor_user_for(actor),
        author_label=actor_label_for(actor),
        change_note=(change_note or "").strip(),
        status=RuleVersion.Status.DRAFT,
    )
    try:
        version.full_clean()
    except ValidationError as error:
        _raise_validation(error)
    version.save()
    audit_record(
        actor=actor,
        action="rule_version.create",
        target_type="rule_version",
        target_id=f"{rule.key}:{version.number}",
        after=_version_snapshot(version),
    )
    return version


def _locked_version(version: RuleVersion) -> RuleVersion:
    # Lock the rule first: every status change of a rule's versions serialises on it.
    Rule.objects.select_for_update().get(pk=version.rule_id)
    locked = RuleVersion.objects.select_for_update().select_related("rule").filter(pk=version.pk)
    found = locked.first()
    if found is None:
        raise RuleVersionNotFound(f"Version {version.pk} is gone.")
    return found


def _set_status(version: RuleVersion, status: str, *, actor: Any, action: str) -> None:
    before = _version_snapshot(version)
    version.status = status
    version.status_changed_at = timezone.now()
    version.save(update_fields=["status", "status_changed_at"])
    audit_record(
        actor=actor,
        action=action,
        target_type="rule_version",
        target_id=f"{version.rule.key}:{version.number}",
        before=before,
        after=_version_snapshot(version),
    )


def _take_slot(
    version: RuleVersion, *, status: str, allowed_from: tuple[str, ...], actor: Any
) -> None:
    """Move a locked version into a one-per-rule status, retiring its current holder."""
    if version.status not in allowed_from:
        raise RuleVersionStateConflict(
            f"Version {version.number} of {version.rule.key} is {version.status}; only "
            f"{' or '.join(allowed_from)} versions can become {status}"
            + (" (roll back to republish an old one)." if status == "published" else "."),
            errors={"status": [f"Is {version.status}."]},
        )
    holders = RuleVersion.objects.select_for_update().filter(rule_id=version.rule_id, status=status)
    for holder in holders:
        holder.rule = version.rule
        _set_status(holder, RuleVersion.Status.RETIRED, actor=actor, action="rule_version.retire")
    action = (
        "rule_version.publish" if status == RuleVersion.Status.PUBLISHED else "rule_version.shadow"
    )
    _set_status(version, status, actor=actor, action=action)


@transaction.atomic
def rule_version_publish(*, version: RuleVersion, actor: Any = None) -> RuleVersion:
    """Publish a draft or shadow version; the previously published one retires with it."""
    version = _locked_version(version)
    _take_slot(
        version,
        status=RuleVersion.Status.PUBLISHED,
        allowed_from=(RuleVersion.Status.DRAFT, RuleVersion.Status.SHADOW),
        actor=actor,
    )
    return version


@transaction.atomic
def rule_version_shadow(*, version: RuleVersion, actor: Any = None) -> RuleVersion:
    """Run a draft on live traffic without deciding; a previous shadow version retires."""
    version = _locked_version(version)
    _take_slot(
        version,
        status=RuleVersion.Status.SHADOW,
        allowed_from=(RuleVersion.Status.DRAFT,),
        actor=actor,
    )
    return version


@transaction.atomic
def rule_version_retire(*, version: RuleVersion, actor: Any = None) -> RuleVersion:
    """Take a version out of service for good (drafts, shadows and published alike)."""
    version = _locked_version(version)
    if version.status == RuleVersion.Status.RETIRED:
        raise RuleVersionStateConflict(
            f"Version {version.number} of {version.rule.key} is already retired.",
            errors={"status": ["Is retired."]},
        )
    _set_status(version, RuleVersion.Status.RETIRED, actor=actor, action="rule_version.retire")
    return version


@transaction.atomic
def rule_version_rollback(
    *, version: RuleVersion, actor: Any = None, change_note: str = ""
) -> RuleVersion:
    """Publish an older version's content as a new version (versions stay immutable)."""
    source = _locked_version(version)
    restored = rule_version_create(
        rule=source.rule,
        condition=source.condition,
        outcome=source.outcome,
        priority=source.priority,
        actions=source.actions,
        effective_from=source.effective_from,
        effective_until=source.effective_until,
        change_note=change_note or f"Rollback to version {source.number}.",
        actor=actor,
    )
    audit_record(
        actor=actor,
        action="rule_version.rollback",
        target_type="rule_version",
        target_id=f"{source.rule.key}:{restored.number}",
        before={"from_version": source.number},
        after=_version_snapshot(restored),
    )
    return rule_version_publish(version=restored, actor=actor)


# --- Lists and policies ------------------------------------------------------------------------


def _list_snapshot(named_list: NamedList, values: Sequence[str]) -> dict[str, Any]:
    return {
        "name": named_list.name,
        "description": named_list.description,
        "value_type": named_list.value_type,
        "version": named_list.version,
        "values": sorted(values),
    }


@transaction.atomic
def named_list_save(
    *,
    name: str,
    values: Sequence[str],
    value_type: str = NamedList.ValueType.STRING,
    description: str = "",
    actor: Any = None,
) -> NamedList:
    """Create or replace a named list's contents; a change bumps its version."""
    cleaned = sorted({str(value).strip() for value in values if str(value).strip()})
    if len(cleaned) > MAX_LIST_VALUES:
        raise InvalidInput(
            f"A list holds at most {MAX_LIST_VALUES} values.",
            errors={"values": [f"At most {MAX_LIST_VALUES}."]},
        )
    for position, value in enumerate(cleaned, start=1):
        try:
            selectors.typed_list_value(value, value_type)
        except ValueError:
            raise InvalidInput(
                f"Value {value!r} is not a valid {value_type}.",
                errors={"values": [f"Line {position}: {value!r} is not a valid {value_type}."]},
            ) from None
        if len(value) > 200:
            raise InvalidInput(
                "List values are at most 200 characters.", errors={"values": ["Too long."]}
            )
    named_list = NamedList.objects.select_for_update().filter(name=name).first()
    before = None
    if named_list is None:
        named_list = NamedList(name=name, value_type=value_type, description=description.strip())
        try:
            named_list.full_clean()
        except ValidationError as error:
            _raise_validation(error)
        _insert_once(named_list, what=f"list {name}")
        action = "named_list.create"
    else:
        old_values = list(named_list.items.values_list("value", flat=True))
        before = _list_snapshot(named_list, old_values)
        changed = (
            sorted(old_values) != cleaned
            or named_list.value_type != value_type
            or named_list.description != description.strip()
        )
        if not changed:
            return named_list
        named_list.value_type = value_type
        named_list.description = description.strip()
        named_list.version = F("version") + 1
        try:
            named_list.full_clean(exclude=["version"])
        except ValidationError as error:
            _raise_validation(error)
        named_list.save(update_fields=["value_type", "description", "version", "updated_at"])
        named_list.refresh_from_db(fields=["version"])
        named_list.items.all().delete()
        action = "named_list.update"
    NamedListItem.objects.bulk_create(
        NamedListItem(named_list=named_list, value=value) for value in cleaned
    )
    audit_record(
        actor=actor,
        action=action,
        target_type="named_list",
        target_id=named_list.name,
        before=before,
        after=_list_snapshot(named_list, cleaned),
    )
    return named_list


def _policy_snapshot(policy: Policy) -> dict[str, Any]:
    return {
        "event_type": policy.event_type,
        "strategy": policy.strategy,
        "default_outcome": policy.default_outcome,
        "outcome_precedence": list(policy.outcome_precedence or []),
    }


@transaction.atomic
def policy_save(
    *,
    event_type: str,
    strategy: str,
    default_outcome: str,
    outcome_precedence: Sequence[str] = (),
    actor: Any = None,
) -> Policy:
    """Create or change the policy of an event type."""
    precedence = [str(outcome).strip() for outcome in outcome_precedence if str(outcome).strip()]
    if len(set(precedence)) != len(precedence):
        raise InvalidInput(
            "An outcome appears twice in the precedence.",
            errors={"outcome_precedence": ["Each outcome once."]},
        )
    policy = Policy.objects.select_for_update().filter(event_type=event_type).first()
    before = _policy_snapshot(policy) if policy else None
    if policy is None:
        policy = Policy(event_type=event_type)
    policy.strategy = strategy
    policy.default_outcome = default_outcome.strip()
    policy.outcome_precedence = precedence
    try:
        policy.full_clean(validate_unique=before is None)
    except ValidationError as error:
        _raise_validation(error)
    if before is None:
        _insert_once(policy, what=f"policy for {event_type}")
    else:
        policy.save(
            update_fields=["strategy", "default_outcome", "outcome_precedence", "updated_at"]
        )
    audit_record(
        actor=actor,
        action="policy.create" if before is None else "policy.update",
        target_type="policy",
        target_id=event_type,
        before=before,
        after=_policy_snapshot(policy),
    )
    return policy


# --- Events and decisions ----------------------------------------------------------------------


def _validated_event_input(
    *, event_type: str, payload: Any, risk_request: Any
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    if not isinstance(payload, dict):
        raise InvalidInput("payload must be a JSON object.", errors={"payload": ["Not an object."]})
    if len(payload) > MAX_PAYLOAD_KEYS:
        raise InvalidInput(
            f"payload has more than {MAX_PAYLOAD_KEYS} keys.", errors={"payload": ["Too large."]}
        )
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
    return _json_for_database(payload, field="payload"), (
        _json_for_database(risk_request, field="risk") if risk_request is not None else None
    )


def _json_for_database(value: Any, *, field: str) -> Any:
    """A JSON round trip that refuses text PostgreSQL's JSONB cannot store."""
    if _unstorable(value):
        raise InvalidInput(
            f"{field} contains a NUL character or an unpaired surrogate.",
            errors={field: ["NUL characters and unpaired surrogates are not allowed."]},
        )
    return json.loads(json.dumps(value))


def _unstorable(value: Any) -> bool:
    """Text PostgreSQL cannot store: NUL (JSONB refuses it) or a lone surrogate (not UTF-8)."""
    if isinstance(value, str):
        if "\x00" in value:
            return True
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_unstorable(key) or _unstorable(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_unstorable(item) for item in value)
    return False


def event_risk_score(*, event: Event) -> tuple[engine.RiskInput | None, int | None]:
    """Score the event when it names a risk model: (risk for the rules, scoring record id).

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
        raise InvalidInput(f"The event cannot be scored: {error.detail}", errors=errors) from error
    return engine.RiskInput(score=record.risk_score, label=record.risk_label), record.pk


def decision_actions_dispatch(*, decision: Decision) -> None:
    """Send the decision's SMS actions through campaigns, recording each outcome on the decision.

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
        if action.get("error") or action.get("type") != "sms":
            continue
        try:
            with transaction.atomic():
                message = campaigns_services.transactional_message_send(
                    phone=str(action["to"]),
                    template=action["template"],
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


@transaction.atomic
def event_register(
    *,
    event_type: str,
    payload: Any,
    idempotency_key: str,
    client_scope: str,
    fingerprint: str,
    risk_request: Any = None,
) -> Decision:
    """Store an event and its decision together (both or neither); one per idempotency key."""
    clean_payload, clean_risk = _validated_event_input(
        event_type=event_type, payload=payload, risk_request=risk_request
    )
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
        _raise_validation(error)
    try:
        with transaction.atomic():
            event.save()
    except IntegrityError:
        raise DuplicateEvent(
            "An event with this Idempotency-Key was already registered.",
            errors={"Idempotency-Key": ["Already used."]},
        ) from None
    risk, risk_record_id = event_risk_score(event=event)
    decision = _decide_and_store(event=event, risk=risk, risk_record_id=risk_record_id)
    decision_actions_dispatch(decision=decision)
    return decision


def _decide_and_store(
    *, event: Event, risk: engine.RiskInput | None, risk_record_id: int | None
) -> Decision:
    policy = selectors.policy_spec_for(event_type=event.type)
    rows = {
        version.pk: version
        for version in selectors.live_rule_versions(event_type=event.type, at=event.received_at)
    }
    versions = [selectors.compiled_version(version) for version in rows.values()]
    needed = {name for version in versions for name in version.list_names}
    snapshot = selectors.list_contents(names=needed)
    result = engine.decide(
        event_type=event.type,
        payload=event.payload,
        received_at=event.received_at,
        versions=versions,
        policy=policy,
        lists={name: content["values"] for name, content in snapshot.items()},
        risk=risk,
    )
    return Decision.objects.create(
        event=event,
        event_type=event.type,
        outcome=result.outcome,
        matched_version=rows[result.matched.version_id] if result.matched else None,
        shadow_outcome=result.shadow_outcome,
        policy=policy.as_json(),
        trace=result.trace,
        lists_snapshot=snapshot,
        actions=[{**action, "status": "pending"} for action in result.actions],
        engine_us=result.engine_us,
        risk_score=risk.score if risk else None,
        risk_label=risk.label if risk else "",
        risk_record_id=risk_record_id,
        decided_at=timezone.now(),
    )


def _stored_risk(decision: Decision) -> engine.RiskInput | None:
    if decision.risk_score is None:
        return None
    return engine.RiskInput(score=decision.risk_score, label=decision.risk_label)


def decision_replay(*, decision: Decision) -> dict[str, Any]:
    """Re-evaluate a stored event against the exact versions, lists and policy it was decided
    with; reports whether outcome and trace match. Reads only: nothing is written."""
    event = decision.event
    stored_ids = [entry["version_id"] for entry in decision.trace]
    by_id = selectors.versions_by_id(version_ids=stored_ids)
    versions = [
        selectors.compiled_version(by_id[entry["version_id"]], status=entry["status"])
        for entry in decision.trace
        if entry["version_id"] in by_id
    ]
    result = engine.decide(
        event_type=event.type,
        payload=event.payload,
        received_at=event.received_at,
        versions=versions,
        policy=engine.PolicySpec.from_json(decision.policy),
        lists={name: content["values"] for name, content in decision.lists_snapshot.items()},
        risk=_stored_risk(decision),
    )

    # Compare what the engine decides about actions, not what dispatching added since.
    def action_identity(action: Mapping[str, Any]) -> tuple[Any, ...]:
        return (action.get("type"), action.get("rule"), action.get("version"), action.get("to"))

    stored_actions = [action_identity(action) for action in decision.actions]
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
    if [action_identity(action) for action in result.actions] != stored_actions:
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


# --- Backtests ---------------------------------------------------------------------------------


@transaction.atomic
def backtest_create(
    *,
    candidates: Sequence[Mapping[str, Any]],
    window_start: datetime,
    window_end: datetime,
    actor: Any = None,
) -> Backtest:
    """Queue a backtest of candidate versions over stored events of a window.

    Small windows run at once (the caller gets the results); larger ones run in a Celery task
    enqueued after commit, which reports progress on the row.
    """
    if not candidates:
        raise InvalidInput("Name at least one candidate.", errors={"candidates": ["Required."]})
    if len(candidates) > MAX_CANDIDATES:
        raise InvalidInput(
            f"At most {MAX_CANDIDATES} candidates.", errors={"candidates": ["Too many."]}
        )
    if window_start >= window_end:
        raise InvalidInput(
            "The window ends before it starts.", errors={"window_end": ["After window_start."]}
        )
    resolved = []
    seen_rules = set()
    for index, candidate in enumerate(candidates):
        key, number = candidate.get("rule_key"), candidate.get("version")
        if not isinstance(key, str) or not isinstance(number, int):
            raise InvalidInput(
                "Each candidate needs rule_key and version.",
                errors={f"candidates[{index}]": ["rule_key and version required."]},
            )
        if key in seen_rules:
            raise InvalidInput(
                f"Rule {key} is named twice.", errors={f"candidates[{index}]": ["Duplicate rule."]}
            )
        seen_rules.add(key)
        version = selectors.rule_version_get(key=key, number=number)
        resolved.append(version)
    backtest = Backtest.objects.create(
        candidates=[
            {"rule_key": version.rule.key, "version": version.number, "version_id": version.pk}
            for version in resolved
        ],
        event_types=sorted({version.rule.event_type for version in resolved}),
        window_start=window_start,
        window_end=window_end,
        created_by_label=actor_label_for(actor),
    )
    total = _backtest_events(backtest).count()
    Backtest.objects.filter(pk=backtest.pk).update(total=total)
    backtest.total = total
    if total > settings.DECISIONS_BACKTEST_INLINE_MAX_EVENTS:
        from decisions.tasks import backtest_run_task  # here: tasks.py imports this module

        transaction.on_commit(lambda: backtest_run_task.delay(backtest.pk))
        return backtest
    return backtest_run(backtest_id=backtest.pk) or backtest


def _backtest_events(backtest: Backtest) -> QuerySet[Event]:
    return (
        Event.objects.filter(
            type__in=backtest.event_types,
            received_at__gte=backtest.window_start,
            received_at__lt=backtest.window_end,
            decision__isnull=False,
        )
        .select_related("decision")
        .order_by("received_at", "id")
    )


def backtest_run(*, backtest_id: int) -> Backtest | None:
    """Evaluate the candidates over the window's events, recording progress per batch.

    Not one transaction on purpose: progress commits batch by batch so a watcher sees it. It
    reads events and decisions and writes only the backtest row, so running it twice only
    recomputes the same results.
    """
    claimed = Backtest.objects.filter(
        pk=backtest_id, status__in=[Backtest.Status.QUEUED, Backtest.Status.RUNNING]
    ).update(status=Backtest.Status.RUNNING, processed=0)
    backtest = Backtest.objects.filter(pk=backtest_id).first()
    if backtest is None or not claimed:
        return backtest
    try:
        results = _backtest_evaluate(backtest)
    except Exception as error:
        Backtest.objects.filter(pk=backtest_id).update(
            status=Backtest.Status.FAILED, error=str(error)[:2000], finished_at=timezone.now()
        )
        raise
    Backtest.objects.filter(pk=backtest_id).update(
        status=Backtest.Status.COMPLETED,
        results=results,
        total=results["evaluated"],
        processed=results["evaluated"],
        finished_at=timezone.now(),
    )
    backtest.refresh_from_db()
    return backtest


def _backtest_evaluate(backtest: Backtest) -> dict[str, Any]:
    candidate_versions = selectors.versions_by_id(
        version_ids=[candidate["version_id"] for candidate in backtest.candidates]
    ).values()
    # Per event type, the candidates that replace their rule's live version (or join the set).
    candidates: dict[str, dict[str, engine.CompiledVersion]] = {}
    for version in candidate_versions:
        candidates.setdefault(version.rule.event_type, {})[version.rule.key] = (
            selectors.compiled_version(version, status=engine.PUBLISHED)
        )
    candidate_ids = {
        version.version_id for by_key in candidates.values() for version in by_key.values()
    }
    candidate_lists = selectors.list_contents(
        names={
            name
            for by_key in candidates.values()
            for version in by_key.values()
            for name in version.list_names
        }
    )
    known: dict[int, engine.CompiledVersion] = {}
    transitions: Counter[tuple[str, str]] = Counter()
    examples: dict[tuple[str, str], list[int]] = {}
    evaluated = changed = candidate_errors = 0
    for batch in _event_batches(backtest):
        missing = {
            entry["version_id"]
            for event in batch
            for entry in event.decision.trace
            if entry["version_id"] not in known
        }
        for version_id, version in selectors.versions_by_id(version_ids=missing).items():
            known[version_id] = selectors.compiled_version(version, status=engine.PUBLISHED)
        for event in batch:
            decision = event.decision
            # The rule set that decided this event, with the candidates swapped in; the lists
            # and policy it saw (candidates reading other lists get today's contents).
            rule_set = {
                entry["rule"]: known[entry["version_id"]]
                for entry in decision.trace
                if entry["status"] == engine.PUBLISHED and entry["version_id"] in known
            }
            rule_set.update(candidates.get(event.type, {}))
            lists = {name: content["values"] for name, content in candidate_lists.items()}
            lists.update(
                {name: content["values"] for name, content in decision.lists_snapshot.items()}
            )
            result = engine.decide(
                event_type=event.type,
                payload=event.payload,
                received_at=event.received_at,
                versions=list(rule_set.values()),
                policy=engine.PolicySpec.from_json(decision.policy),
                lists=lists,
                risk=_stored_risk(decision),
            )
            evaluated += 1
            candidate_errors += sum(
                1
                for entry in result.trace
                if entry["version_id"] in candidate_ids and entry["result"] == "error"
            )
            if result.outcome != decision.outcome:
                changed += 1
                transition = (decision.outcome, result.outcome)
                transitions[transition] += 1
                bucket = examples.setdefault(transition, [])
                if len(bucket) < settings.DECISIONS_BACKTEST_EXAMPLES:
                    bucket.append(event.pk)
        Backtest.objects.filter(pk=backtest.pk).update(
            processed=evaluated, total=Greatest(F("total"), evaluated)
        )
    return {
        "evaluated": evaluated,
        "changed": changed,
        "unchanged": evaluated - changed,
        "candidate_errors": candidate_errors,
        "transitions": [
            {"from": old, "to": new, "count": count, "example_event_ids": examples[(old, new)]}
            for (old, new), count in sorted(
                transitions.items(), key=lambda item: (-item[1], item[0])
            )
        ],
    }


def _event_batches(backtest: Backtest) -> Iterator[list[Event]]:
    """The window's decided events in (received_at, id) order, a keyset page at a time."""
    events = _backtest_events(backtest)
    batch_size = settings.DECISIONS_BACKTEST_BATCH_SIZE
    last: Event | None = None
    while True:
        page = events
        if last is not None:
            page = page.filter(
                Q(received_at__gt=last.received_at)
                | Q(received_at=last.received_at, id__gt=last.pk)
            )
        batch = list(page[:batch_size])
        if not batch:
            return
        yield batch
        last = batch[-1]
