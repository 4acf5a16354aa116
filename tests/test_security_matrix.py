"""The permission matrix, proved: every door tried as anonymous and each role; API doors also
as each one-scope key, pages and admin as a key holding every scope.

core.security_matrix reads what each URL pattern declares (scopes on API views, permissions on
pages, the admin classes' permission methods); this walks them all with one request per
(door, identity): GET for reads, POST/PATCH with an empty JSON body for writes. Path parameters
are dummy values (a 404 after the permission check still counts as allowed), or a real row's id
where the view looks its object up before it checks the permission.
"""

from collections.abc import Iterator

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from campaigns.tests.factories import campaign_factory, contact_factory
from core.management.commands.security_matrix import DOCS, docs_with_matrix
from core.problems import PROBLEM_CONTENT_TYPE
from core.security_matrix import (
    ANONYMOUS,
    PRODUCT_APPS,
    ROLE_NAMES,
    SCOPE_NAMES,
    Door,
    doors,
    matrix_markdown,
)
from core.services import api_key_create
from decisions.tests.factories import register_event, rule_with_version
from records.tests.factories import record_create
from risk.tests.factories import credit_model_register

LOGIN_PAGES = ("/login/", "/admin/login/")
API_IDENTITIES = (ANONYMOUS, *ROLE_NAMES, *(f"key:{scope}" for scope in SCOPE_NAMES))
# Pages and admin are for people: a key must open none of them. A key holding every scope is
# the strongest key there is, so its refusal stands for every one-scope key's.
PEOPLE_IDENTITIES = (ANONYMOUS, *ROLE_NAMES, "key:all")
DOORS = doors()


@pytest.fixture
def callers(db, django_user_model, settings) -> dict[str, Client]:
    """A client per identity: anonymous, a staff member per role, a key per single scope
    and one key with every scope."""
    # One address makes every anonymous request here; the per-address limit is not under test.
    settings.API_THROTTLE_RATES = {"client": "100000/min", "anonymous": "100000/min"}
    clients = {ANONYMOUS: Client(raise_request_exception=False)}
    for role in ROLE_NAMES:
        person = django_user_model.objects.create_user(username=role.replace(" ", "-"))
        person.is_staff = True
        person.save(update_fields=["is_staff"])
        person.groups.add(Group.objects.get(name=role))
        clients[role] = Client(raise_request_exception=False)
        clients[role].force_login(person)
    for scope in (*SCOPE_NAMES, "all"):
        _, raw_key = api_key_create(name=f"only-{scope}", scopes=[scope])
        clients[f"key:{scope}"] = Client(
            raise_request_exception=False, HTTP_AUTHORIZATION=f"Api-Key {raw_key}"
        )
    return clients


@pytest.fixture
def object_ids(callers, django_user_model) -> dict[type, str]:
    """A real row for each admin whose views look the object up first (history, TOTP config)."""
    person = django_user_model.objects.get(username="admin")
    TOTPDevice.objects.create(user=person, name="phone", confirmed=True)
    AccessAttempt.objects.create(username="someone", ip_address="10.0.0.1", failures_since_start=1)
    AccessLog.objects.create(username="someone", ip_address="10.0.0.1")
    AccessFailureLog.objects.create(username="someone", ip_address="10.0.0.1")
    # The apps' own factories, through their services (rows no request here changes).
    credit_model_register()
    record_create()
    rule_with_version()
    register_event({"amount": 5000})
    campaign_factory()
    contact_factory()
    ids = {}
    for door in DOORS:
        if door.model_admin is not None:
            model = door.model_admin.model
            first = model._default_manager.order_by("pk").values_list("pk", flat=True).first()
            if first is not None:
                ids[model] = str(first)
    return ids


def knock(client: Client, door: Door, url: str):
    if door.method == "GET":
        return client.get(url)
    if door.kind == "api":
        return client.generic(door.method, url, "{}", content_type="application/json")
    return client.generic(door.method, url, "", content_type="application/x-www-form-urlencoded")


def verdict(door: Door, identity: str, response) -> str | None:
    """None when the response agrees with the declaration, else what went wrong."""
    status = response.status_code
    to_login = status == 302 and response["Location"].split("?")[0] in LOGIN_PAGES
    refused = status in (401, 403) or to_login
    if door.name == "admin:app_list" and status == 404:
        refused = True  # the admin's app page answers 404 to a person who may see none of it
    if status >= 500:
        return f"{status} server error"
    if identity.removeprefix("key:") in door.allowed:  # a role, or a key by its one scope
        return f"refused ({status})" if refused else None
    if not refused:
        return f"let in ({status})"
    if door.kind == "api" and status in (401, 403):
        if response["Content-Type"] != PROBLEM_CONTENT_TYPE:
            return f"refused with {response['Content-Type']}, not problem details"
        expected = 401 if identity == ANONYMOUS else 403
        if status != expected:
            return f"refused with {status}, expected {expected}"
    return None


def closed_doors(app: str, kind: str) -> Iterator[Door]:
    return (door for door in DOORS if door.app == app and door.kind == kind and door.declared)


@pytest.mark.parametrize("app", PRODUCT_APPS)
def test_every_door_declares_who_may_open_it(app):
    undeclared = [f"{d.method} {d.route} ({d.name})" for d in DOORS if d.app == app]
    undeclared = [
        line
        for line, door in zip(undeclared, [d for d in DOORS if d.app == app], strict=True)
        if not door.declared
    ]

    assert not undeclared, f"{app}: {len(undeclared)} doors declare nobody:\n" + "\n".join(
        undeclared
    )


# One test per app and kind of door, so the two test workers share the ~3,000 requests evenly.
APP_KINDS = sorted({(d.app, d.kind) for d in DOORS if d.kind != "open" and d.declared})


@pytest.mark.parametrize(("app", "kind"), APP_KINDS)
def test_every_door_admits_exactly_whom_it_declares(app, kind, callers, object_ids):
    wrong, tried, unprovable = [], 0, []
    for door in closed_doors(app, kind):
        if door.needs_row and door.model_admin.model not in object_ids:
            unprovable.append(door.route)  # no row: the view answers "gone" before it checks
            continue
        url = door.url(object_ids)
        for identity in API_IDENTITIES if door.kind == "api" else PEOPLE_IDENTITIES:
            tried += 1
            problem = verdict(door, identity, knock(callers[identity], door, url))
            if problem:
                wrong.append(f"{door.method} {url} as {identity}: {problem} (needs {door.needs})")

    print(f"{app} {kind}: {tried} requests, history views without a row to try: {unprovable}")
    assert not wrong, f"{len(wrong)} of {tried} requests disagree:\n" + "\n".join(wrong)


def test_the_docs_hold_the_matrix_the_code_declares():
    text = DOCS.read_text()

    assert docs_with_matrix(text, matrix_markdown(DOORS)) == text, (
        "docs/security.md is out of date: run `manage.py security_matrix --write`"
    )


def test_the_command_prints_the_matrix(capsys):
    call_command("security_matrix")

    assert capsys.readouterr().out == matrix_markdown(DOORS)
