"""Factories for the decisions tests: rows are built through the services, like in production."""

import uuid
from typing import Any

from decisions import services
from decisions.models import Decision, Rule, RuleVersion


def rule_with_version(
    *,
    key: str = "high-amount",
    event_type: str = "loan_application",
    condition: str = "event.amount > 1000",
    outcome: str = "review",
    priority: int = 10,
    status: str = "published",
    actions: list[dict[str, Any]] | None = None,
    actor: Any = None,
) -> RuleVersion:
    """A rule (created if missing) with a new version in the given status."""
    rule = Rule.objects.filter(key=key).first() or services.rule_create(
        key=key, name=key.replace("-", " ").title(), event_type=event_type, actor=actor
    )
    version = services.rule_version_create(
        rule=rule,
        condition=condition,
        outcome=outcome,
        priority=priority,
        actions=actions,
        actor=actor,
    )
    if status == "published":
        return services.rule_version_publish(version=version, actor=actor)
    if status == "shadow":
        return services.rule_version_shadow(version=version, actor=actor)
    if status == "retired":
        return services.rule_version_retire(version=version, actor=actor)
    return version


def register_event(
    payload: dict[str, Any], *, event_type: str = "loan_application", scope: str = "test"
) -> Decision:
    return services.event_register(
        event_type=event_type,
        payload=payload,
        idempotency_key=str(uuid.uuid4()),
        client_scope=scope,
        fingerprint="0" * 64,
    )
