"""The audit trail's hash chain: each entry's hash covers its content and the previous hash.

Kept free of models so the migration that back-fills the chain computes it the same way.
"""

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

GENESIS = ""


def entry_digest(
    *,
    previous_hash: str,
    occurred_at: datetime,
    actor_label: str,
    action: str,
    target_type: str,
    target_id: str,
    before: Any,
    after: Any,
    request_id: str,
) -> str:
    """SHA-256 over the canonical JSON of an entry (the form it takes back out of JSONB)."""
    canonical = json.dumps(
        [
            previous_hash,
            occurred_at.astimezone(UTC).isoformat(timespec="microseconds"),
            actor_label,
            action,
            target_type,
            target_id,
            before,
            after,
            request_id,
        ],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def row_digest(row: Any, *, previous_hash: str) -> str:
    return entry_digest(
        previous_hash=previous_hash,
        occurred_at=row.occurred_at,
        actor_label=row.actor_label,
        action=row.action,
        target_type=row.target_type,
        target_id=row.target_id,
        before=row.before,
        after=row.after,
        request_id=row.request_id,
    )
