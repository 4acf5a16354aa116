"""A read replica for the read-heavy pages and API lists, when REPLICA_DATABASE_URL is set.

Only reads made while `reads_from(REPLICA)` is active go to the replica: ReplicaReadsMiddleware
opens it for GET and HEAD requests to every API list (a viewset's `list`) and to the pages
named in REPLICA_READ_VIEWS. Writes always go to `default`; after the first write of a request
its reads go there too (it reads what it wrote), and so does every read inside a transaction
(a `select_for_update` cannot run on a replica, and a transaction must see its own writes).
Without a replica everything stays on `default`.
"""

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.http import HttpRequest, HttpResponse

REPLICA = "replica"


@dataclass
class _ReadRouting:
    alias: str
    wrote: bool = False


_routing: contextvars.ContextVar[_ReadRouting | None] = contextvars.ContextVar(
    "read_routing", default=None
)


@contextmanager
def reads_from(alias: str) -> Iterator[None]:
    """Send this block's ORM reads to `alias` (the writes still go to default)."""
    token = _routing.set(_ReadRouting(alias=alias))
    try:
        yield
    finally:
        _routing.reset(token)


def _in_a_transaction() -> bool:
    """True inside an atomic block of the code (a test case's own wrapping ones do not count)."""
    default = connections[DEFAULT_DB_ALIAS]
    return any(not getattr(block, "_from_testcase", False) for block in default.atomic_blocks)


class ReplicaRouter:
    """Reads where `reads_from` says; writes and migrations on default, always."""

    def db_for_read(self, model: type, **hints: Any) -> str | None:
        routing = _routing.get()
        if routing is None or routing.wrote or _in_a_transaction():
            return DEFAULT_DB_ALIAS
        return routing.alias

    def db_for_write(self, model: type, **hints: Any) -> str:
        routing = _routing.get()
        if routing is not None:
            routing.wrote = True
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool:
        return True  # the replica holds the same rows as default

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return db == DEFAULT_DB_ALIAS


def replica_configured() -> bool:
    return REPLICA in connections


def replica_view(request: HttpRequest, view_func: Callable[..., Any]) -> bool:
    """A read of a list: an API viewset's `list`, or a page named in REPLICA_READ_VIEWS."""
    if request.method not in ("GET", "HEAD"):
        return False
    actions = getattr(view_func, "actions", None) or {}
    if actions.get("get") == "list":
        return True
    match = request.resolver_match
    return match is not None and match.view_name in settings.REPLICA_READ_VIEWS


class ReplicaReadsMiddleware:
    """Route the reads of list views to the replica, from the view to the rendered response
    (templates evaluate their querysets while rendering); nothing without a replica."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            return self.get_response(request)
        finally:
            token = getattr(request, "_replica_reads_token", None)
            if token is not None:
                _routing.reset(token)

    def process_view(
        self, request: HttpRequest, view_func: Callable[..., Any], args: Any, kwargs: Any
    ) -> None:
        if replica_configured() and replica_view(request, view_func):
            token = _routing.set(_ReadRouting(alias=REPLICA))
            request._replica_reads_token = token  # type: ignore[attr-defined]
