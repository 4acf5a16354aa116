"""Admin classes checked against our permissions (roles and scopes), not Django's per-model ones.

A role grants `core.<permission>` (see core.access), never Django's `<app>.view_<model>`, so a
ModelAdmin names what reading and what writing it needs and this mixin asks exactly that. A
subclass that forbids more (e.g. a read-only admin that answers False to add) overrides the
method itself, which comes before the mixin in the method order.
"""

from typing import Any

from django.http import HttpRequest

from core.permissions import request_may


class PermissionAdminMixin:
    """`view_permission` to see the admin, `change_permission` to add, change and delete."""

    view_permission: str = ""
    change_permission: str = ""

    def _may(self, request: HttpRequest, permission: str) -> bool:
        return bool(permission) and request_may(request, permission)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may(request, self.view_permission) or self._may(
            request, self.change_permission
        )

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may(request, self.change_permission)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may(request, self.change_permission)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may(request, self.change_permission)


class ReadOnlyAdminMixin:
    """Stored history and ledgers: shown to whoever may view them, never added, changed or
    deleted through the admin (put it before PermissionAdminMixin)."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
