"""The audit trail: call `audit_record` inside the transaction that makes the change."""

from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.db import transaction

from core.authentication import ApiClient
from core.middleware import current_request_id
from core.models import AuditEntry

# Who makes a change: a staff user, an integrator's API key (which stands in for a user), or
# None for the system itself.
Actor = AbstractBaseUser | AnonymousUser | ApiClient | None


def actor_user_for(actor: Any) -> Any:
    """The user row behind an actor, or None for API keys, systems and anonymous callers."""
    return actor if getattr(actor, "_meta", None) is not None else None


def actor_label_for(actor: Any) -> str:
    if actor is None:
        return "system"
    return str(getattr(actor, "username", None) or actor)


def audit_record(
    *,
    actor: Any,
    action: str,
    target_type: str,
    target_id: str | int,
    before: Any = None,
    after: Any = None,
) -> AuditEntry:
    """Append one entry. Must run inside the caller's transaction, so both commit or neither."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record must be called inside the change's transaction")
    return AuditEntry.objects.create(
        actor=actor_user_for(actor),
        actor_label=actor_label_for(actor),
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        before=before,
        after=after,
        request_id=current_request_id() or "",
    )
