"""One check for every door: an API view, a page, an HTMX action or an admin view names the
scope (or people-only permission) it needs, and callers of both kinds are held to it."""

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

if TYPE_CHECKING:  # rest_framework.views reads DEFAULT_PERMISSION_CLASSES, which names this module
    from rest_framework.views import APIView
else:
    APIView = Any

from core.access import permission_name
from core.principals import ApiClient
from core.throttling import address_throttle_check


def principal_may(principal: Any, permission: str) -> bool:
    """A key (or token) by its scopes; a person by the permissions their roles grant."""
    if isinstance(principal, ApiClient):
        return permission in principal.scopes
    if not getattr(principal, "is_authenticated", False):
        return False
    return bool(principal.has_perm(permission_name(permission)))


# What a page for any signed-in person declares (their own account, the dashboard frame).
SIGNED_IN = "signed-in"


# What a view names for an action: one scope, or a tuple of scopes any one of which suffices
# (e.g. decisions:read, or events:write for a submitter reading its own events' decisions, the
# view narrowing the rows itself).
type Needs = str | tuple[str, ...]


def declared_scope(
    required_scopes: Mapping[str, Needs], *, action: str | None, method: str
) -> Needs | None:
    """What a view's `required_scopes` names for an action or method (None: refused)."""
    method = method.upper()
    for key in (action, method, "*"):
        if key and key in required_scopes:
            return required_scopes[key]
    return None


def alternatives(needs: Needs) -> tuple[str, ...]:
    """The scopes any one of which satisfies `needs`."""
    return (needs,) if isinstance(needs, str) else tuple(needs)


def required_scope(view: APIView, request: Request) -> Needs | None:
    """What the view asks of this request: by viewset action, then HTTP method, then `*`."""
    return declared_scope(
        getattr(view, "required_scopes", {}),
        action=getattr(view, "action", None),
        method=request.method or "",
    )


class ScopeRequired(BasePermission):
    """The API's default: a view that names no scope for a request refuses it (fail closed)."""

    message = "This credential lacks the scope this operation needs."

    def has_permission(self, request: Request, view: APIView) -> bool:
        if not getattr(request.user, "is_authenticated", False):
            address_throttle_check(request)
            return False
        if request.method == "OPTIONS":
            return True  # the operation's description only, as /api/schema/ publishes it
        needs = required_scope(view, request)
        if needs is None:
            return False
        if not any(principal_may(request.user, scope) for scope in alternatives(needs)):
            named = "' or '".join(alternatives(needs))
            self.message = f"This operation needs the '{named}' scope (or a role granting it)."
            return False
        return True


class AnyCredential(BasePermission):
    """Only for self-inspection (who am I): any valid key, token or session, whatever its scopes."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        if not getattr(request.user, "is_authenticated", False):
            address_throttle_check(request)
            return False
        return True


def requires(scope: str) -> type[BasePermission]:
    """For function views (`@permission_classes([requires(Scope.PREDICT)])`)."""

    class _Requires(ScopeRequired):
        required = scope  # read by the security matrix (core.security_matrix)

        def has_permission(self, request: Request, view: APIView) -> bool:
            view.required_scopes = {"*": scope}  # type: ignore[attr-defined]
            return super().has_permission(request, view)

    _Requires.__name__ = f"Requires_{scope.replace(':', '_')}"
    return _Requires


def page_requires(permission: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """For pages and HTMX actions: anonymous → the login page; a person without it → 403."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        guarded = permission_required(permission_name(permission), raise_exception=True)(view)
        wrapped = login_required(guarded)
        wrapped.required_permission = permission  # type: ignore[attr-defined]
        return wrapped

    return decorate


def page_for_anyone_signed_in(view: Callable[..., Any]) -> Callable[..., Any]:
    """For the few pages every signed-in person may open (their own account, the dashboard
    frame whose panels each check their own permission): declared, so the matrix lists them."""
    wrapped = login_required(view)
    wrapped.required_permission = SIGNED_IN  # type: ignore[attr-defined]
    return wrapped


def request_may(request: HttpRequest, permission: str) -> bool:
    return principal_may(getattr(request, "user", None), permission)
