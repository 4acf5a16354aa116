"""Rules and their immutable versions: create, validate, and move versions through their life
(draft → shadow → published → retired, and rollback as a new version)."""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from campaigns import exceptions as campaigns_exceptions
from campaigns import services as campaigns_services
from core.audit import actor_label_for, actor_user_for, audit_record
from core.errors import InvalidInput
from core.json import json_for_database
from decisions import engine, similarity, velocity
from decisions.exceptions import (
    DuplicateRule,
    InvalidActions,
    RuleVersionStateConflict,
    WebhookEndpointNotFound,
)
from decisions.models import IDENTIFIER_PATTERN, NamedList, Rule, RuleVersion
from decisions.services.approvals import approval_check_before_publish
from decisions.services.shared import (
    Actor,
    raise_validation,
    version_locked,
)
from decisions.services.webhooks import webhook_endpoint_active

MAX_ACTIONS = 10
MAX_ACTION_TEMPLATE = 1600
ACTION_TYPES = {
    "sms": {"required": ("template", "to"), "optional": ("topic",)},
    # `endpoint` names a WebhookEndpoint staff registered (decisions.services.webhooks).
    "webhook": {"required": ("endpoint",), "optional": ()},
}
# The audit action (`rule_version.<verb>`) of a move into each status.
STATUS_VERBS: dict[str, str] = {
    RuleVersion.Status.PUBLISHED: "publish",
    RuleVersion.Status.SHADOW: "shadow",
    RuleVersion.Status.RETIRED: "retire",
    RuleVersion.Status.SCHEDULED: "schedule",
    RuleVersion.Status.CANARY: "canary",
}
# The statuses only one version of a rule holds at a time, and where a version may enter them.
SLOT_SOURCES = {
    RuleVersion.Status.PUBLISHED: (
        RuleVersion.Status.DRAFT,
        RuleVersion.Status.SHADOW,
        RuleVersion.Status.SCHEDULED,
        RuleVersion.Status.CANARY,
    ),
    RuleVersion.Status.SHADOW: (RuleVersion.Status.DRAFT,),
    RuleVersion.Status.SCHEDULED: (RuleVersion.Status.DRAFT, RuleVersion.Status.SHADOW),
    RuleVersion.Status.CANARY: (RuleVersion.Status.DRAFT, RuleVersion.Status.SHADOW),
}


def _rule_snapshot(rule: Rule) -> dict[str, Any]:
    return {
        "key": rule.key,
        "name": rule.name,
        "description": rule.description,
        "event_type": rule.event_type,
    }


def _version_snapshot(version: RuleVersion) -> dict[str, Any]:
    snapshot = {"number": version.number, "status": version.status, **version.content}
    if version.canary_percent is not None:
        snapshot["canary"] = {"percent": version.canary_percent, "key": version.canary_key}
    return snapshot


def _duplicate_rule(key: str) -> DuplicateRule:
    return DuplicateRule(f"A rule with key {key} exists.", errors={"key": ["Taken."]})


@transaction.atomic
def rule_create(
    *, key: str, name: str, event_type: str, description: str = "", actor: Actor = None
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
            raise _duplicate_rule(rule.key) from None
        raise_validation(error)
    try:
        with transaction.atomic():
            rule.save()
    except IntegrityError:
        raise _duplicate_rule(rule.key) from None
    audit_record(
        actor=actor,
        action="rule.create",
        target_type="rule",
        target_id=rule.key,
        after=_rule_snapshot(rule),
    )
    return rule


@transaction.atomic
def rule_update(*, rule: Rule, name: str, description: str, actor: Actor = None) -> Rule:
    """Rename or re-describe a rule; its key and event type never change."""
    rule = Rule.objects.select_for_update().get(pk=rule.pk)
    before = _rule_snapshot(rule)
    rule.name = name.strip()
    rule.description = description.strip()
    try:
        rule.full_clean()
    except ValidationError as error:
        raise_validation(error)
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


def rule_actions_validate(actions: Any) -> list[dict[str, Any]]:
    """Check the shape of a version's actions; `to` is a CEL expression over the event."""
    if actions in (None, ""):
        return []
    if not isinstance(actions, list):
        raise InvalidActions("Actions must be a list.", errors={"actions": ["Must be a list."]})
    if len(actions) > MAX_ACTIONS:
        raise InvalidActions(
            f"At most {MAX_ACTIONS} actions.", errors={"actions": [f"At most {MAX_ACTIONS}."]}
        )
    return [
        _action_validate(action, field=f"actions[{index}]") for index, action in enumerate(actions)
    ]


def _action_validate(action: Any, *, field: str) -> dict[str, Any]:
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
        if value is not None and (not isinstance(value, str) or len(value) > MAX_ACTION_TEMPLATE):
            raise InvalidActions(
                f"{field}.{name} must be text of at most {MAX_ACTION_TEMPLATE} characters.",
                errors={f"{field}.{name}": ["Too long or not text."]},
            )
    if action["type"] == "sms":
        engine.compile_condition(action["to"], field=f"{field}.to")
        _sms_template_check(action["template"], field=f"{field}.template")
    if action["type"] == "webhook":
        _webhook_endpoint_check(action["endpoint"], field=f"{field}.endpoint")
    return json_for_database(dict(action), field=field)


def _webhook_endpoint_check(name: str, *, field: str) -> None:
    """A rule author calls only endpoints staff registered: never a URL of their own."""
    try:
        webhook_endpoint_active(name=name)
    except WebhookEndpointNotFound:
        raise InvalidActions(
            f"{field} must name an active webhook endpoint; {name!r} is not one.",
            errors={field: ["Not an active webhook endpoint."]},
        ) from None


def _sms_template_check(key: str, *, field: str) -> None:
    """An SMS action names an SmsTemplate by key, and a campaign manager must have approved
    it: a rule author cannot make the product send text nobody answerable has read."""
    try:
        campaigns_services.sms_template_for_sending(key=key)
    except campaigns_exceptions.SmsTemplateNotFound:
        raise InvalidActions(
            f"{field} must name an approved SMS template; {key!r} is not one.",
            errors={field: ["Not an approved SMS template key."]},
        ) from None


@dataclass(frozen=True)
class ConditionReads:
    """What a condition reads beyond the event, derived when its version is saved."""

    list_names: list[str]
    velocity_names: list[str]
    reads_similar: bool


def _condition_reads(condition: str, *, event_type: str) -> ConditionReads:
    """Compile the condition; every list and velocity aggregate it names must exist."""
    list_names = _condition_lists(condition)
    velocity_names = velocity.referenced_aggregates(condition)
    undeclared = sorted(set(velocity_names) - velocity.declared_names(event_type=event_type))
    if undeclared:
        raise InvalidInput(
            f"The condition reads velocity.{', velocity.'.join(undeclared)}, which the "
            f"{event_type} policy does not declare; declare the aggregate first.",
            errors={"condition": [f"Undeclared velocity aggregate: {', '.join(undeclared)}."]},
        )
    return ConditionReads(
        list_names=list_names,
        velocity_names=velocity_names,
        reads_similar=similarity.reads_similar(condition),
    )


def _condition_lists(condition: str) -> list[str]:
    """Compile the condition and name the lists it reads, all of which must exist."""
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
    return list_names


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
    actor: Actor = None,
) -> RuleVersion:
    """Add a draft version; its CEL condition is compiled now and rejected with its position."""
    rule = Rule.objects.select_for_update().get(pk=rule.pk)  # numbers versions one at a time
    # Before full_clean, whose check-constraint error would name no field.
    if effective_from and effective_until and effective_from >= effective_until:
        raise InvalidInput(
            "The effective window ends before it starts.",
            errors={"effective_until": ["Must be after effective_from."]},
        )
    reads = _condition_reads(condition, event_type=rule.event_type)
    cleaned_actions = rule_actions_validate(actions)
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
        list_names=reads.list_names,
        velocity_names=reads.velocity_names,
        reads_similar=reads.reads_similar,
        author=actor_user_for(actor),
        author_label=actor_label_for(actor),
        change_note=(change_note or "").strip(),
        status=RuleVersion.Status.DRAFT,
    )
    try:
        version.full_clean()
    except ValidationError as error:
        raise_validation(error)
    version.save()
    audit_record(
        actor=actor,
        action="rule_version.create",
        target_type="rule_version",
        target_id=f"{rule.key}:{version.number}",
        after=_version_snapshot(version),
    )
    return version


def _set_status(version: RuleVersion, status: str, *, actor: Actor) -> None:
    before = _version_snapshot(version)
    version.status = status
    version.status_changed_at = timezone.now()
    version.save(update_fields=["status", "status_changed_at"])
    audit_record(
        actor=actor,
        action=f"rule_version.{STATUS_VERBS[status]}",
        target_type="rule_version",
        target_id=f"{version.rule.key}:{version.number}",
        before=before,
        after=_version_snapshot(version),
    )


def _take_slot(version: RuleVersion, *, status: RuleVersion.Status, actor: Actor) -> RuleVersion:
    """Move a version into a one-per-rule status, retiring its current holder."""
    version = version_locked(version)
    allowed_from = SLOT_SOURCES[status]
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
        _set_status(holder, RuleVersion.Status.RETIRED, actor=actor)
    _set_status(version, status, actor=actor)
    return version


@transaction.atomic
def rule_version_publish(*, version: RuleVersion, actor: Actor = None) -> RuleVersion:
    """Publish a draft, shadow or canary version; the previously published one retires with it.

    A version whose effective_from is still ahead is scheduled instead: the published version
    keeps deciding until that instant, and this one from then on (decisions.rollouts).
    Under a policy that requires approval, only a version approved by someone other than its
    author may go live (409 otherwise).
    """
    locked = version_locked(version)
    approval_check_before_publish(locked)
    if locked.effective_from is not None and locked.effective_from > timezone.now():
        return _take_slot(version, status=RuleVersion.Status.SCHEDULED, actor=actor)
    return _take_slot(version, status=RuleVersion.Status.PUBLISHED, actor=actor)


def rule_versions_activate_due(*, now: datetime | None = None) -> list[RuleVersion]:
    """File every scheduled version whose time has come as published (retiring the version it
    replaces). Decisions do not wait for this: they pick the version by their received time."""
    now = now or timezone.now()
    due = RuleVersion.objects.filter(
        status=RuleVersion.Status.SCHEDULED, effective_from__lte=now
    ).order_by("effective_from", "pk")
    activated = []
    for version in due:
        with transaction.atomic():
            activated.append(_take_slot(version, status=RuleVersion.Status.PUBLISHED, actor=None))
    return activated


@transaction.atomic
def rule_version_canary(
    *, version: RuleVersion, percent: Any, key: Any, actor: Actor = None
) -> RuleVersion:
    """Let a draft or shadow version decide `percent` % of the traffic, picked by hashing the
    payload field `key`; the published version decides the rest. On a running canary this
    changes its share (the same key keeps the customers it had and adds more).

    A canary decides real events, so it needs the same approval as publishing.
    """
    if isinstance(percent, bool) or not isinstance(percent, int) or not 1 <= percent <= 99:
        raise InvalidInput(
            "A canary takes from 1 to 99 percent of the traffic.",
            errors={"percent": ["An integer from 1 to 99."]},
        )
    if not isinstance(key, str) or not re.fullmatch(IDENTIFIER_PATTERN, key) or len(key) > 64:
        raise InvalidInput(
            "The canary key names a payload field, such as customer_id.",
            errors={"key": ["A payload field name: lower-case letters, digits and '_'."]},
        )
    locked = version_locked(version)
    approval_check_before_publish(locked)
    if locked.status not in (*SLOT_SOURCES[RuleVersion.Status.CANARY], RuleVersion.Status.CANARY):
        raise RuleVersionStateConflict(
            f"Version {locked.number} of {locked.rule.key} is {locked.status}; only draft, "
            "shadow or canary versions can run as a canary.",
            errors={"status": [f"Is {locked.status}."]},
        )
    before = _version_snapshot(locked)
    locked.canary_percent, locked.canary_key = percent, key
    locked.save(update_fields=["canary_percent", "canary_key"])
    if before["status"] == RuleVersion.Status.CANARY:
        audit_record(
            actor=actor,
            action="rule_version.canary",
            target_type="rule_version",
            target_id=f"{locked.rule.key}:{locked.number}",
            before=before,
            after=_version_snapshot(locked),
        )
        return locked
    return _take_slot(locked, status=RuleVersion.Status.CANARY, actor=actor)


@transaction.atomic
def rule_version_shadow(*, version: RuleVersion, actor: Actor = None) -> RuleVersion:
    """Run a draft on live traffic without deciding; a previous shadow version retires."""
    return _take_slot(version, status=RuleVersion.Status.SHADOW, actor=actor)


@transaction.atomic
def rule_version_retire(*, version: RuleVersion, actor: Actor = None) -> RuleVersion:
    """Take a version out of service for good (drafts, shadows and published alike)."""
    version = version_locked(version)
    if version.status == RuleVersion.Status.RETIRED:
        raise RuleVersionStateConflict(
            f"Version {version.number} of {version.rule.key} is already retired.",
            errors={"status": ["Is retired."]},
        )
    _set_status(version, RuleVersion.Status.RETIRED, actor=actor)
    return version


@transaction.atomic
def rule_version_rollback(
    *, version: RuleVersion, actor: Actor = None, change_note: str = ""
) -> RuleVersion:
    """Publish an older version's content as a new version (versions stay immutable).

    Under a policy that requires approval, only an approved version's content can come back
    this way: the copy carries the source's approval (the audit entry names the source).
    """
    source = version_locked(version)
    approval_check_before_publish(source)
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
    # Not rule_version_publish: the approval check was made on the source above.
    return _take_slot(restored, status=RuleVersion.Status.PUBLISHED, actor=actor)
