"""Idempotency-Key semantics (IETF httpapi draft) as a reusable piece.

Same key + same body: the stored response again, byte for byte, flagged `Idempotent-Replayed:
true` (the body is kept as the text that was sent, not as JSONB, which reorders keys).
Same key + different body: 422. Same key while the first request is still running: 409.

The claim is committed on its own first, so concurrent retries see it; the work and the stored
response then commit together, so a key maps to exactly one result. A failed request releases its
claim (nothing was written), and a claim abandoned by a crashed process expires after a lease.
"""

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connections, router, transaction
from django.http import HttpResponse
from django.utils import timezone
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from core.authentication import client_scope
from core.errors import Conflict, InvalidInput, Unprocessable
from core.models import IdempotencyRecord

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
# Printable ASCII without leading or trailing spaces (a header value keeps neither).
KEY_PATTERN = r"^[!-~]([ -~]*[!-~])?$"


@dataclass(frozen=True)
class IdempotentResult:
    status: int
    content: bytes
    replayed: bool

    @property
    def body(self) -> Any:
        return json.loads(self.content)


def _rendered(body: Any) -> bytes:
    """The JSON the API sends for `body`, rendered once so a replay can send the same bytes."""
    return JSONRenderer().render(body)


def request_fingerprint(*, method: str, path: str, body: Any) -> str:
    """SHA-256 over method, path and the canonical JSON of the body (key order ignored)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{method.upper()} {path}\n{canonical}".encode()).hexdigest()


def idempotent_execute(
    *, scope: str, key: str, fingerprint: str, produce: Callable[[], tuple[int, Any]]
) -> IdempotentResult:
    """Run `produce` at most once per (scope, key); `produce` returns (status, JSON body)."""
    if len(key) > MAX_KEY_LENGTH or not re.fullmatch(KEY_PATTERN, key):
        raise InvalidInput(
            f"{HEADER} must be 1 to {MAX_KEY_LENGTH} printable ASCII characters.",
            errors={HEADER: [f"Must be 1 to {MAX_KEY_LENGTH} printable ASCII characters."]},
        )
    replay = _claim(scope=scope, key=key, fingerprint=fingerprint)
    if replay is not None:
        return replay
    try:
        with transaction.atomic():
            status, body = produce()
            content = _rendered(body)
            _complete(scope=scope, key=key, status=status, content=content)
    except BaseException:
        IdempotencyRecord.objects.filter(
            scope=scope, key=key, state=IdempotencyRecord.State.IN_FLIGHT
        ).delete()
        raise
    return IdempotentResult(status=status, content=content, replayed=False)


_COMPLETE = """
UPDATE core_idempotencyrecord
SET state = %s, response_status = %s, response_body = %s, completed_at = %s
WHERE scope = %s AND key = %s
"""


def _complete(*, scope: str, key: str, status: int, content: bytes) -> None:
    """Store the response on the claim, in the work's transaction (one plain UPDATE: building it
    through a QuerySet cost as much as the statement itself)."""
    with connections[router.db_for_write(IdempotencyRecord)].cursor() as cursor:
        cursor.execute(
            _COMPLETE,
            [
                IdempotencyRecord.State.COMPLETED,
                status,
                content.decode(),
                timezone.now(),
                scope,
                key,
            ],
        )


# The claim commits on its own with synchronous_commit off: it is visible to every other
# session at once, as any commit, but does not wait for its WAL to reach the disk (one fsync,
# 3-80 ms on the bench machine's disk, was half the fsyncs of an event). Nothing can be lost
# that matters: the work's own commit is synchronous and flushes the WAL written before it, the
# claim's included; a crash before that loses a claim whose work never committed either, so a
# retry finds no record and runs, as after any failed attempt. set_config(..., true) in the
# statement itself sets it for that statement's own transaction, so it stays one round trip.
_CLAIM_ASYNC = """
INSERT INTO core_idempotencyrecord (scope, key, fingerprint, state, response_body, created_at)
SELECT %s, %s, %s, %s, '', %s
FROM (SELECT set_config('synchronous_commit', 'off', true)) AS async_commit
ON CONFLICT (scope, key) DO NOTHING RETURNING id
"""
_CLAIM_IN_TRANSACTION = """
INSERT INTO core_idempotencyrecord (scope, key, fingerprint, state, response_body, created_at)
VALUES (%s, %s, %s, %s, '', %s)
ON CONFLICT (scope, key) DO NOTHING RETURNING id
"""


def _claim_insert(*, scope: str, key: str, fingerprint: str) -> bool:
    """Insert the in-flight record unless the key has one; True when this call inserted it.

    One statement: outside a transaction it commits by itself (asynchronously, see above), where
    `atomic()` around a plain INSERT cost a BEGIN and a COMMIT, and ON CONFLICT needs no
    savepoint to survive a conflict. Inside a caller's transaction it is a plain part of it: the
    caller's commit stays as durable as the caller made it.
    """
    connection = connections[router.db_for_write(IdempotencyRecord)]
    statement = _CLAIM_IN_TRANSACTION if connection.in_atomic_block else _CLAIM_ASYNC
    with connection.cursor() as cursor:
        cursor.execute(
            statement,
            [scope, key, fingerprint, IdempotencyRecord.State.IN_FLIGHT, timezone.now()],
        )
        return cursor.fetchone() is not None


def _claim(*, scope: str, key: str, fingerprint: str) -> IdempotentResult | None:
    """Claim the key (committed at once), or return the stored result, or raise 409 / 422."""
    existing = None
    while existing is None:
        if _claim_insert(scope=scope, key=key, fingerprint=fingerprint):
            return None
        # None: the holder failed and released its claim since our insert; claim it again.
        existing = IdempotencyRecord.objects.filter(scope=scope, key=key).first()
    if existing.fingerprint != fingerprint:
        raise Unprocessable(
            f"This {HEADER} was already used with a different request body.",
            errors={HEADER: ["Already used with a different request."]},
        )
    if existing.state == IdempotencyRecord.State.COMPLETED:
        return IdempotentResult(
            status=existing.response_status or 200,
            content=(existing.response_body or "null").encode(),
            replayed=True,
        )
    lease_expired_before = timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_LEASE_SECONDS)
    if existing.created_at < lease_expired_before:
        # The first attempt died mid-request; take the claim over if nobody else just did.
        taken = IdempotencyRecord.objects.filter(
            pk=existing.pk, state=IdempotencyRecord.State.IN_FLIGHT, created_at=existing.created_at
        ).update(created_at=timezone.now())
        if taken:
            return None
    raise Conflict(
        f"A request with this {HEADER} is still being processed; retry later.",
        errors={HEADER: ["In flight."]},
    )


def idempotent_response(
    request: Request, produce: Callable[[], tuple[int, Any]], *, required: bool = False
) -> HttpResponse:
    """For an API view: apply the header when present (or demand it), answer a DRF Response."""
    key = request.headers.get(HEADER)
    if key is None:
        if required:
            raise InvalidInput(f"The {HEADER} header is required.", errors={HEADER: ["Required."]})
        status, body = produce()
        return Response(body, status=status)
    result = idempotent_execute(
        scope=client_scope(request.user),
        key=key,
        fingerprint=request_fingerprint(
            method=request.method or "POST", path=request.path, body=request.data
        ),
        produce=produce,
    )
    headers = {REPLAYED_HEADER: "true"} if result.replayed else {}
    # The first answer and every replay are the same stored bytes.
    return HttpResponse(
        result.content, status=result.status, headers=headers, content_type="application/json"
    )
