"""Velocity aggregates: a policy declares them, rules read them as `velocity.<name>`."""

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from core.audit import audit_record
from core.errors import Conflict, InvalidInput, NotFound
from decisions import enqueue, selectors
from decisions.models import Policy, VelocityAggregate
from decisions.services.policies import policy_save
from decisions.services.shared import Actor, insert_once, raise_validation


def _snapshot(aggregate: VelocityAggregate) -> dict[str, Any]:
    return {
        "name": aggregate.name,
        "function": aggregate.function,
        "key_field": aggregate.key_field,
        "field": aggregate.field,
        "window_seconds": aggregate.window_seconds,
    }


@transaction.atomic
def velocity_aggregate_save(
    *,
    event_type: str,
    name: str,
    function: str,
    key_field: str,
    window_seconds: int,
    field: str = "",
    actor: Actor = None,
) -> VelocityAggregate:
    """Declare (or change) a named aggregate of the event type's policy.

    The policy is created with its defaults if the event type has none yet. Once committed, a
    worker builds the expression index on the key field that serves the aggregate's queries (and
    drops the one on a key field no aggregate uses any more).
    """
    policy = Policy.objects.filter(event_type=event_type).first() or policy_save(
        event_type=event_type, strategy="first_match", default_outcome="approve", actor=actor
    )
    aggregate = (
        VelocityAggregate.objects.select_for_update().filter(policy=policy, name=name).first()
    )
    before = _snapshot(aggregate) if aggregate else None
    aggregate = aggregate or VelocityAggregate(policy=policy, name=name)
    aggregate.function = function
    aggregate.key_field = key_field.strip()
    aggregate.field = "" if function == VelocityAggregate.Function.COUNT else field.strip()
    aggregate.window_seconds = window_seconds
    if aggregate.function != VelocityAggregate.Function.COUNT and not aggregate.field:
        raise InvalidInput(
            f"A {function} aggregate needs the payload field it reads.",
            errors={"field": ["Required for sum and distinct."]},
        )
    try:
        aggregate.full_clean(exclude=["policy"], validate_unique=False)
    except ValidationError as error:
        raise_validation(error)
    if before is None:
        insert_once(aggregate, what=f"velocity aggregate {name}")
    else:
        aggregate.save(update_fields=["function", "key_field", "field", "window_seconds"])
    audit_record(
        actor=actor,
        action="velocity.create" if before is None else "velocity.update",
        target_type="policy",
        target_id=event_type,
        before=before,
        after=_snapshot(aggregate),
    )
    enqueue.velocity_indexes_sync_enqueue()
    return aggregate


@transaction.atomic
def velocity_aggregate_delete(*, event_type: str, name: str, actor: Actor = None) -> None:
    """Remove an aggregate no rule version still reads (409 naming them otherwise)."""
    aggregate = (
        VelocityAggregate.objects.select_for_update()
        .filter(policy__event_type=event_type, name=name)
        .first()
    )
    if aggregate is None:
        raise NotFound(f"The {event_type} policy declares no velocity.{name}.")
    readers = selectors.velocity_readers(event_type=event_type, name=name)
    if readers:
        raise Conflict(
            f"velocity.{name} is read by {', '.join(readers)}; retire those versions first.",
            errors={"name": [f"Read by {', '.join(readers)}."]},
        )
    audit_record(
        actor=actor,
        action="velocity.delete",
        target_type="policy",
        target_id=event_type,
        before=_snapshot(aggregate),
    )
    aggregate.delete()
    enqueue.velocity_indexes_sync_enqueue()
