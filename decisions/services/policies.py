"""Policies: how an event type's matching rules become one outcome."""

from collections.abc import Sequence
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from core.access import PeopleOnly
from core.audit import actor_user_for, audit_record
from core.errors import InvalidInput
from core.permissions import principal_may
from decisions.exceptions import ApprovalForbidden
from decisions.models import Policy
from decisions.services.shared import Actor, insert_once, raise_validation


def _policy_snapshot(policy: Policy) -> dict[str, Any]:
    return {
        "event_type": policy.event_type,
        "strategy": policy.strategy,
        "default_outcome": policy.default_outcome,
        "outcome_precedence": list(policy.outcome_precedence or []),
        "requires_approval": policy.requires_approval,
    }


def policy_validate(*, outcome_precedence: Sequence[Any]) -> list[str]:
    """The precedence without blanks; an outcome named twice is refused."""
    precedence = [str(outcome).strip() for outcome in outcome_precedence if str(outcome).strip()]
    if len(set(precedence)) != len(precedence):
        raise InvalidInput(
            "An outcome appears twice in the precedence.",
            errors={"outcome_precedence": ["Each outcome once."]},
        )
    return precedence


@transaction.atomic
def policy_save(
    *,
    event_type: str,
    strategy: str,
    default_outcome: str,
    outcome_precedence: Sequence[str] = (),
    requires_approval: bool | None = None,
    actor: Actor = None,
) -> Policy:
    """Create or change the policy of an event type (`requires_approval=None` keeps it).

    Turning four-eyes publishing off needs a rule approver: otherwise an author could switch it
    off, publish alone, and switch it on again.
    """
    precedence = policy_validate(outcome_precedence=outcome_precedence)
    policy = Policy.objects.select_for_update().filter(event_type=event_type).first()
    before = _policy_snapshot(policy) if policy else None
    if policy is None:
        policy = Policy(event_type=event_type)
    if requires_approval is not None:
        if (
            policy.requires_approval
            and not requires_approval
            and not principal_may(actor_user_for(actor), PeopleOnly.RULES_APPROVE)
        ):
            raise ApprovalForbidden(
                "Only a rule approver can turn off approval before publishing.",
                errors={"requires_approval": ["Needs a rule approver to turn off."]},
            )
        policy.requires_approval = requires_approval
    policy.strategy = strategy
    policy.default_outcome = default_outcome.strip()
    policy.outcome_precedence = precedence
    try:
        policy.full_clean(validate_unique=before is None)
    except ValidationError as error:
        raise_validation(error)
    if before is None:
        insert_once(policy, what=f"policy for {event_type}")
    else:
        policy.save(
            update_fields=[
                "strategy",
                "default_outcome",
                "outcome_precedence",
                "requires_approval",
                "updated_at",
            ]
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
