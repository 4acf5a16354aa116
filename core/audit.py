"""The audit trail: call `audit_record` inside the transaction that makes the change."""

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db import transaction
from django.utils import timezone

from core.audit_chain import GENESIS, row_digest
from core.authentication import ApiClient
from core.middleware import current_request_id
from core.models import AuditEntry

# Who makes a change: the request's user (a person, or the ApiClient an API key authenticates
# as), or None for the system (management commands, tasks).
CHAIN_LOCK = 7_202_612  # any constant: the advisory lock that serialises appends to the chain

type Actor = User | AnonymousUser | ApiClient | None


def actor_user_for(actor: Actor) -> User | None:
    """The user row behind an actor, or None for API keys, systems and anonymous callers."""
    return actor if isinstance(actor, User) else None


def actor_label_for(actor: Actor) -> str:
    if actor is None:
        return "system"
    return str(getattr(actor, "username", None) or actor)


def audit_record(
    *,
    actor: Actor,
    action: str,
    target_type: str,
    target_id: str | int,
    before: Any = None,
    after: Any = None,
) -> AuditEntry:
    """Append one entry. Must run inside the caller's transaction, so both commit or neither."""
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        raise RuntimeError("audit_record must be called inside the change's transaction")
    # One writer at a time extends the chain; the lock ends with the caller's transaction, so
    # the next writer reads this entry's hash only once it has committed.
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CHAIN_LOCK])
    previous = AuditEntry.objects.order_by("-id").values_list("entry_hash", flat=True).first()
    entry = AuditEntry(
        occurred_at=timezone.now(),
        actor=actor_user_for(actor),
        actor_label=actor_label_for(actor),
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        before=before,
        after=after,
        request_id=current_request_id() or "",
        previous_hash=previous or GENESIS,
    )
    entry.entry_hash = row_digest(entry, previous_hash=entry.previous_hash)
    entry.save(force_insert=True)
    return entry


@dataclass(frozen=True)
class ChainBreak:
    entry_id: int
    problem: str


def audit_chain_verify() -> tuple[int, ChainBreak | None]:
    """Walk the trail oldest first: how many entries hold, and the first broken link if any."""
    previous = GENESIS
    checked = 0
    for entry in AuditEntry.objects.order_by("id").iterator(chunk_size=2000):
        if entry.previous_hash != previous:
            return checked, ChainBreak(entry.pk, "does not link to the entry before it")
        if row_digest(entry, previous_hash=previous) != entry.entry_hash:
            return checked, ChainBreak(entry.pk, "its content does not match its hash")
        previous = entry.entry_hash
        checked += 1
    return checked, None
