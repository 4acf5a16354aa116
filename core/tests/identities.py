"""Test helpers: a person in some roles, and an API client whose key has the given scopes."""

from typing import Any

from django.contrib.auth.models import Group, Permission, User
from rest_framework.test import APIClient

from core.access import ROLES, codename
from core.services import api_key_create


def role_group(role: str) -> Group:
    """The role's group as core's migration creates it (again, after a flushing test)."""
    group, created = Group.objects.get_or_create(name=role)
    if created:
        granted = [codename(permission) for permission in ROLES[role]]
        group.permissions.set(
            Permission.objects.filter(content_type__app_label="core", codename__in=granted)
        )
    return group


def person(*roles: str, username: str = "", staff: bool = True) -> User:
    """A user in these role groups (staff by default, so the admin lets them in)."""
    user = User.objects.create_user(
        username=username or "-".join(role.replace(" ", "-") for role in roles) or "nobody",
        password="pass-1234-word",
        is_staff=staff,
    )
    user.groups.add(*[role_group(role) for role in roles])
    return user


def key_client(*scopes: str, name: str = "") -> APIClient:
    """An API client authenticated by a new key carrying exactly these scopes."""
    _key, raw = api_key_create(name=name or "-".join(scopes) or "no-scopes", scopes=list(scopes))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    return client


def session_client(user: User, client: Any = None) -> APIClient:
    """An API client logged in as `user` (session authentication)."""
    client = client or APIClient()
    client.force_login(user)
    return client
