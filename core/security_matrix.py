"""Who may open each door: every URL pattern and method, with what its code declares.

Read from the code, never written by hand: DRF views by their permission classes and
`required_scopes` (core.permissions), pages by the `required_permission` that `page_requires`
(or `page_for_anyone_signed_in`) leaves on them, admin views by their ModelAdmin's permission
methods, asked on behalf of each role. `manage.py security_matrix` prints it as markdown for
docs/security.md, and tests/test_security_matrix.py proves it with a request per identity.
Near 500 lines: reading three kinds of door (API, page, admin) and rendering the tables.
"""

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from django.contrib import admin
from django.contrib.admin.sites import AdminSite
from django.test import RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RegexPattern, RoutePattern

from core.access import ALL_SCOPES, ROLES, SCOPE_DESCRIPTIONS, PeopleOnly, permission_name
from core.permissions import (
    SIGNED_IN,
    AnyCredential,
    ScopeRequired,
    alternatives,
    declared_scope,
)

ANONYMOUS = "anonymous"
ROLE_NAMES: tuple[str, ...] = tuple(ROLES)
SCOPE_NAMES: tuple[str, ...] = tuple(sorted(ALL_SCOPES))
PEOPLE_ONLY = frozenset(PeopleOnly)

# What a door needs, beyond a scope or permission name.
ANY_CREDENTIAL = "any credential"  # any key, token or session: self-inspection (whoami)
STAFF = "staff"  # the admin site's own pages: Django admits `is_staff` people only

# Doors that need no permission, each for a stated reason (the matrix lists them as open).
OPEN_DOORS: dict[str, str] = {
    "login": "the login form itself (django-axes locks repeated failures)",
    "logout": "ends the caller's own session",
    "admin:login": "the admin's login form (same accounts, same lockout)",
    "admin:logout": "ends the caller's own session",
    "healthz": "the orchestrator's probe: names failing parts, holds no data",
    "metrics": "Prometheus scrape: bearer METRICS_TOKEN (always required in production)",
    "healthz_slash": "the same probe, with a trailing slash",
    "campaigns:webhook-inbound": "Twilio: X-Twilio-Signature checked before anything is read",
    "campaigns:webhook-status": "Twilio: X-Twilio-Signature checked before anything is read",
    "schema": "the OpenAPI document: describes the API (and the scope of each operation), "
    "holds no data; integrators read it before they hold a key",
    "swagger-ui": "renders the OpenAPI document, holds no data",
}
# Admin views of third-party ModelAdmins that are not among Django's standard five: which of
# the ModelAdmin's permission methods their code asks (read in the packages' source).
THIRD_PARTY_ADMIN_VIEWS: dict[str, str] = {
    "user_change_password": "change",  # django.contrib.auth: has_change_permission
    "config_view": "view",  # django_otp TOTP: has_view_or_change_permission
    "qrcode_view": "view",  # django_otp TOTP: has_view_or_change_permission
}
ADMIN_STANDARD_VIEWS: dict[str, str] = {
    "changelist_view": "view",
    "add_view": "add",
    "change_view": "view",
    "delete_view": "delete",
    "history_view": "view",
}
# Admin site views every staff member may open (their content is filtered per person).
ADMIN_SITE_VIEWS = {"index", "password_change", "password_change_done", "i18n_javascript"}
# Path parameter values tried in order; the first that the parameter's pattern accepts is used.
DUMMY_VALUES = ("999999", "no-such-key", "no_such_name", "+15005550000")


@dataclass(frozen=True)
class Door:
    """One URL pattern and method, what it needs, and whom that lets in."""

    kind: str  # "api", "page", "admin" or "open"
    method: str
    route: str  # the pattern, readable: /api/v1/rules/{key}/
    name: str  # the URL name (or the view's name when the pattern has none)
    needs: str | None  # a scope, a permission, SIGNED_IN, ANY_CREDENTIAL, STAFF; None: undeclared
    allowed: frozenset[str] = field(default=frozenset())  # identities: roles, scopes
    pattern: tuple[Any, ...] = field(default=(), compare=False, repr=False)
    model_admin: Any = field(default=None, compare=False, repr=False)
    reason: str = ""  # why an open door is open
    app: str = "core"  # the app whose code declares it (third-party admin counts as core's)
    needs_row: bool = False  # the view looks its object up before it checks the permission

    @property
    def declared(self) -> bool:
        return self.kind == "open" or self.needs is not None

    def url(self, object_ids: dict[type, str] | None = None) -> str:
        """A concrete URL: path parameters filled with dummy values (or a real object's id)."""
        object_id = None
        if self.model_admin is not None and object_ids:
            object_id = object_ids.get(self.model_admin.model)
        return "/" + "".join(_fill(part, object_id) for part in self.pattern)


PRODUCT_APPS = ("core", "decisions", "records", "risk", "campaigns")


def doors() -> list[Door]:
    """Every door of the URLconf, in URL order."""
    return [
        replace(door, app=_owner(door, route[1]))
        for route in _walk(get_resolver().url_patterns)
        for door in _doors_of(*route)
    ]


def _owner(door: Door, url: URLPattern) -> str:
    """The product app whose code declares the door; the kernel for third-party views."""
    if door.model_admin is not None:
        label = door.model_admin.model._meta.app_label
    else:
        innermost = list(_layers(url.callback))[-1]
        owner = getattr(url.callback, "cls", None) or getattr(innermost, "__self__", innermost)
        label = (getattr(owner, "__module__", None) or "").split(".")[0]
    return label if label in PRODUCT_APPS else "core"


def _walk(
    patterns: list[Any], prefix: tuple[Any, ...] = (), namespace: str = ""
) -> Iterator[tuple[tuple[Any, ...], URLPattern, str]]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _walk(entry.url_patterns, (*prefix, entry.pattern), inner)
        else:
            yield (*prefix, entry.pattern), entry, namespace


def _readable(pattern: tuple[Any, ...]) -> str:
    text = "".join(str(part) for part in pattern)
    text = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", text)
    text = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", text)
    return "/" + text.replace("^", "").replace("$", "").replace("\\", "")


def _fill(part: Any, object_id: str | None) -> str:
    if isinstance(part, RoutePattern):
        text = str(part)
        for name, converter in part.converters.items():
            value = _value_for(converter.regex, object_id)
            text = re.sub(rf"<(?:\w+:)?{name}>", value, text)
        return text
    assert isinstance(part, RegexPattern)
    regex = str(part).lstrip("^").rstrip("$")
    compiled = re.compile(regex)
    groups = _named_groups(regex)
    for name, group_regex in groups:
        regex = regex.replace(f"(?P<{name}>{group_regex})", _value_for(group_regex, object_id), 1)
    filled = regex.replace("\\", "")
    assert compiled.fullmatch(filled), (str(part), filled)
    return filled


def _named_groups(regex: str) -> list[tuple[str, str]]:
    """`(?P<name>body)` groups with their bodies (bodies may nest parentheses)."""
    found = []
    for match in re.finditer(r"\(\?P<(\w+)>", regex):
        depth, index = 1, match.end()
        while depth:
            depth += {"(": 1, ")": -1}.get(regex[index], 0)
            index += 1
        found.append((match.group(1), regex[match.end() : index - 1]))
    return found


def _value_for(regex: str, object_id: str | None) -> str:
    candidates = ((object_id,) if object_id else ()) + DUMMY_VALUES
    for value in candidates:
        if re.fullmatch(regex, value):
            return value
    alternatives = regex.split("|")
    return "core" if "core" in alternatives else alternatives[0]  # admin's app_label


def _doors_of(pattern: tuple[Any, ...], url: URLPattern, namespace: str) -> list[Door]:
    view = url.callback
    route = _readable(pattern)
    name = f"{namespace}{url.name}" if url.name else route
    if name in OPEN_DOORS:
        return [Door("open", "GET", route, name, None, pattern=pattern, reason=OPEN_DOORS[name])]
    view_class = getattr(view, "cls", None)
    if view_class is not None:
        return _api_doors(view, view_class, route, name, pattern)
    if route.startswith("/admin/"):
        return [_admin_door(view, route, name, pattern)]
    needs = _declared_on(view, "required_permission")
    methods = _declared_on(view, "http_methods") or ("GET",)
    return [
        Door("page", method, route, name, needs, _people_with(needs), pattern=pattern)
        for method in methods
    ]


def _api_doors(
    view: Callable[..., Any], view_class: type, route: str, name: str, pattern: tuple[Any, ...]
) -> list[Door]:
    actions: dict[str, str] = getattr(view, "actions", None) or {
        method: ""
        for method in ("get", "post", "put", "patch", "delete")
        if hasattr(view_class, method)
    }
    found = []
    for method, action in actions.items():
        if method in ("head", "options"):
            continue  # DRF adds `head` to a viewset's actions at its first GET; same door
        needs = _api_needs(view_class, action=action or None, method=method)
        found.append(
            Door("api", method.upper(), route, name, needs, _api_allowed(needs), pattern=pattern)
        )
    return found


def _api_needs(view_class: type, *, action: str | None, method: str) -> str | None:
    classes = getattr(view_class, "permission_classes", [])
    if any(issubclass(cls, AnyCredential) for cls in classes):
        return ANY_CREDENTIAL
    for cls in classes:
        if getattr(cls, "required", None):  # core.permissions.requires(scope)
            return str(cls.required)
    if any(issubclass(cls, ScopeRequired) for cls in classes):
        wanted = getattr(view_class, "required_scopes", {})
        if not isinstance(wanted, Mapping):
            return None  # computed per request (a property): nothing the matrix can read
        needs = declared_scope(wanted, action=action, method=method)
        return None if needs is None else " or ".join(alternatives(needs))
    return None


def _api_allowed(needs: str | None) -> frozenset[str]:
    if needs == ANY_CREDENTIAL:
        return frozenset(ROLE_NAMES) | frozenset(SCOPE_NAMES)
    if needs is None:
        return frozenset()
    scopes = needs.split(" or ")
    keys = frozenset(scope for scope in scopes if scope in ALL_SCOPES)
    return keys.union(*(_people_with(scope) for scope in scopes))


def _people_with(needs: str | None) -> frozenset[str]:
    if needs in (SIGNED_IN, STAFF):
        return frozenset(ROLE_NAMES)
    if needs is None:
        return frozenset()
    wanted = needs.split(" or ")  # a declaration may name alternatives
    return frozenset(role for role, granted in ROLES.items() if granted.intersection(wanted))


def _layers(view: Any) -> Iterator[Any]:
    """The view and what it wraps: decorators' `__wrapped__`, partials' `func`."""
    seen = 0
    while view is not None and seen < 20:
        yield view
        view = view.func if isinstance(view, partial) else getattr(view, "__wrapped__", None)
        seen += 1


def _declared_on(view: Any, attribute: str) -> Any:
    return next(
        (getattr(layer, attribute) for layer in _layers(view) if hasattr(layer, attribute)), None
    )


def _model_admin_of(view: Any) -> Any:
    """The ModelAdmin (or AdminSite) an admin view belongs to, however it was wrapped."""
    for layer in _layers(view):
        if getattr(layer, "model_admin", None) is not None:
            return layer.model_admin
        if isinstance(layer, partial) and "model_admin" in layer.keywords:
            return layer.keywords["model_admin"]
        if getattr(layer, "__self__", None) is not None:
            return layer.__self__
    return None


def _admin_door(view: Callable[..., Any], route: str, name: str, pattern: tuple[Any, ...]) -> Door:
    wrapped = getattr(view, "__wrapped__", view)
    model_admin = _model_admin_of(view)
    if isinstance(model_admin, AdminSite) or model_admin is None:
        view_name = getattr(wrapped, "__name__", "")
        if view_name == "app_index":
            return Door("admin", "GET", route, name, STAFF, frozenset(_app_viewers()), pattern)
        needs = STAFF if view_name in ADMIN_SITE_VIEWS or name == "admin:view_on_site" else None
        if view_name == "autocomplete_view":
            needs = "staff, and view permission on the searched model's admin"
            return Door("admin", "GET", route, name, needs, frozenset(), pattern)
        if view_name == "catch_all_view":
            return Door("admin", "GET", route, name, STAFF, _people_with(STAFF), pattern)
        return Door("admin", "GET", route, name, needs, _people_with(needs), pattern)
    declared = _declared_on(view, "required_permission")
    view_name = getattr(wrapped, "__name__", "")
    if view_name == "view" and getattr(wrapped, "view_class", None) is not None:
        # The old change URL: a redirect to the change view, for any staff member.
        return Door("admin", "GET", route, name, STAFF, _people_with(STAFF), pattern, model_admin)
    if declared is not None:
        allowed = _people_with(declared)
        return Door("admin", "GET", route, name, declared, allowed, pattern, model_admin)
    kind = ADMIN_STANDARD_VIEWS.get(view_name) or THIRD_PARTY_ADMIN_VIEWS.get(view_name)
    if kind is None:
        return Door("admin", "GET", route, name, None, frozenset(), pattern, model_admin)
    needs = _admin_needs(model_admin, kind)
    allowed = frozenset(role for role in ROLE_NAMES if _admin_may(model_admin, kind, role))
    looks_up_first = view_name in ("history_view", "config_view", "qrcode_view")
    return Door(
        "admin", "GET", route, name, needs, allowed, pattern, model_admin, needs_row=looks_up_first
    )


def _admin_needs(model_admin: Any, kind: str) -> str:
    """How the ModelAdmin decides: our mixin's attributes, or Django's model permissions."""
    view_permission = getattr(model_admin, "view_permission", None)
    change_permission = getattr(model_admin, "change_permission", None)
    if view_permission is not None or change_permission is not None:
        nobody = not any(_admin_may(model_admin, kind, role) for role in ("admin",))
        if nobody and kind != "view":
            return "nobody (read-only)"
        if kind == "view":
            either = dict.fromkeys(p for p in (view_permission, change_permission) if p)
            return " or ".join(either) or "nobody"
        return change_permission or "nobody (read-only)"
    opts = model_admin.model._meta
    return f"django {opts.app_label}.{kind}_{opts.model_name} (superuser)"


class _RolePerson:
    """A staff member holding exactly one role, for asking admin classes without a database."""

    is_active = is_staff = is_authenticated = True
    is_superuser = is_anonymous = False

    def __init__(self, role: str) -> None:
        self.permissions = {permission_name(p) for p in ROLES[role]}

    def has_perm(self, permission: str, obj: Any = None) -> bool:
        return permission in self.permissions

    def has_module_perms(self, app_label: str) -> bool:
        return any(p.startswith(f"{app_label}.") for p in self.permissions)


def _as_role(role: str) -> Any:
    request = RequestFactory().get("/admin/")
    request.user = _RolePerson(role)  # type: ignore[assignment]
    return request


def _admin_may(model_admin: Any, kind: str, role: str) -> bool:
    request = _as_role(role)
    if kind == "view":
        return bool(model_admin.has_view_or_change_permission(request))
    return bool(getattr(model_admin, f"has_{kind}_permission")(request))


def _app_viewers(app_label: str = "core") -> set[str]:
    """Roles the admin's app page for `app_label` shows something to (404 for the others)."""
    admins = [
        ma for model, ma in admin.site._registry.items() if model._meta.app_label == app_label
    ]
    return {role for role in ROLE_NAMES if any(_admin_lists(ma, role) for ma in admins)}


def _admin_lists(model_admin: Any, role: str) -> bool:
    """What Django's admin index asks before it lists a model to a person."""
    request = _as_role(role)
    if not model_admin.has_module_permission(request):
        return False
    return True in model_admin.get_model_perms(request).values()


# --- the markdown of docs/security.md ----------------------------------------------------------

ROLE_HEADERS = {
    "analyst": "analyst",
    "rule editor": "rule editor",
    "rule approver": "rule approver",
    "campaign manager": "campaign mgr",
    "compliance": "compliance",
    "admin": "admin",
}


def _tick(door: Door, identity: str) -> str:
    return "✓" if identity in door.allowed else ""


def _needs_text(door: Door) -> str:
    if door.needs is None:
        return "**UNDECLARED**"
    return " or ".join(_permission_text(needs) for needs in door.needs.split(" or "))


def _permission_text(permission: str) -> str:
    if permission in PEOPLE_ONLY:
        return f"`{permission}` (people only)"
    if permission in ALL_SCOPES:
        return f"`{permission}`"
    return permission


def _row(door: Door, *, with_key: bool) -> str:
    cells = [door.method, f"`{door.route}`", _needs_text(door)]
    cells += [_tick(door, role) for role in ROLE_NAMES]
    if with_key:
        keys = sorted(door.allowed & set(SCOPE_NAMES))
        cells.append("any" if len(keys) == len(SCOPE_NAMES) else ", ".join(keys))
    return "| " + " | ".join(cells) + " |"


def _table(rows: list[Door], *, with_key: bool) -> list[str]:
    headers = ["method", "URL", "needs", *ROLE_HEADERS.values()]
    if with_key:
        headers.append("key scope")
    lines = ["| " + " | ".join(headers) + " |", "|" + " --- |" * len(headers)]
    return lines + [_row(door, with_key=with_key) for door in rows]


def _roles_table() -> list[str]:
    """Permission by role, from core.access.ROLES (the groups migration core/0004 creates)."""
    lines = [
        "| permission | what it allows | " + " | ".join(ROLE_HEADERS.values()) + " | key |",
        "|" + " --- |" * (len(ROLE_NAMES) + 3),
    ]
    for permission, text in SCOPE_DESCRIPTIONS.items():
        ticks = ["✓" if permission in ROLES[role] else "" for role in ROLE_NAMES]
        key = "no (people only)" if permission in PEOPLE_ONLY else "yes"
        lines.append(f"| `{permission}` | {text} | " + " | ".join(ticks) + f" | {key} |")
    return lines


def matrix_markdown(found: list[Door] | None = None) -> str:
    """The matrix as markdown: API, pages, admin, open doors, and any undeclared door."""
    found = doors() if found is None else found
    by_kind = {kind: [d for d in found if d.kind == kind] for kind in ("api", "page", "admin")}
    api_identities = 1 + len(ROLE_NAMES) + len(SCOPE_NAMES)
    people_identities = 1 + len(ROLE_NAMES) + 1
    tried = [d for d in found if d.kind != "open"]
    api_tried = len(by_kind["api"])
    requests = api_tried * api_identities + (len(tried) - api_tried) * people_identities
    lines = [
        f"{len(found)} doors (URL pattern and method): {len(by_kind['api'])} API, "
        f"{len(by_kind['page'])} page, {len(by_kind['admin'])} admin, "
        f"{len(found) - len(tried)} open. Each API door is tried as {api_identities} identities "
        f"(anonymous, {len(ROLE_NAMES)} roles, {len(SCOPE_NAMES)} single-scope keys); each page "
        f"and admin door as anonymous, the {len(ROLE_NAMES)} roles and one key holding every "
        f"scope (if that key is refused, so is any key with fewer): {requests} requests. "
        "Nobody anonymous passes a closed door; a key opens only API doors (pages and admin are "
        "for people); a ✓ marks a role that passes.",
        "",
        "### Roles",
        "",
        *_roles_table(),
        "",
        "### API",
        "",
        *_table(by_kind["api"], with_key=True),
        "",
        "### Pages and HTMX actions",
        "",
        *_table(by_kind["page"], with_key=False),
        "",
        "### Admin",
        "",
        "Every admin URL first needs `is_staff`; a role's members must be staff to use it.",
        "",
        *_table(by_kind["admin"], with_key=False),
        "",
        "### Open doors",
        "",
        "| URL | why it is open |",
        "| --- | --- |",
        *[f"| `{d.route}` | {d.reason} |" for d in found if d.kind == "open"],
    ]
    undeclared = [d for d in found if not d.declared]
    if undeclared:
        lines += ["", f"### Undeclared ({len(undeclared)}): fix these", ""]
        lines += [f"- {d.method} `{d.route}` ({d.name})" for d in undeclared]
    return "\n".join(lines) + "\n"
