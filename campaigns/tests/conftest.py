"""Callers of every kind for the access tests: a key with chosen scopes, a person in a role."""

from collections.abc import Callable

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from core.access import ROLES, codename
from core.models import ApiKey
from core.services import api_key_create


@pytest.fixture
def key_client(db) -> Callable[..., APIClient]:
    """`key_client("contacts:read", ...)`: an API client holding a key with only these scopes."""

    def make(*scopes: str) -> APIClient:
        key, raw = api_key_create(name=f"key-{'-'.join(scopes)[:40]}", scopes=scopes)
        # In steady use, so pinned query counts do not pay for the last-use update.
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now())
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
        return client

    return make


def _group(role: str) -> Group:
    """The role's group as the migration made it (made again after a live-server test's flush
    emptied the tables, which keeps the permissions but not the groups)."""
    group, created = Group.objects.get_or_create(name=role)
    if created:
        codenames = [codename(permission) for permission in ROLES[role]]
        group.permissions.set(
            Permission.objects.filter(content_type__app_label="core", codename__in=codenames)
        )
    return group


@pytest.fixture
def role_user(db) -> Callable[[str], User]:
    """`role_user("compliance")`: a staff person (admin site access) in that role only."""

    def make(role: str) -> User:
        user = User.objects.create_user(
            username=role.replace(" ", "_"), password="role-pass-123", is_staff=True
        )
        user.groups.add(_group(role))
        return user

    return make


@pytest.fixture
def role_client(role_user) -> Callable[[str], Client]:
    """`role_client("campaign manager")`: a logged-in browser session of a person in a role."""

    def make(role: str) -> Client:
        client = Client()
        client.force_login(role_user(role))
        return client

    return make
