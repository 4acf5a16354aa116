"""The six roles as groups: made by a data migration, and made again whenever they are missing.

A flush (a transactional test, or `manage.py flush`) empties the groups table but re-runs the
post_migrate signal, which recreates permissions; this handler recreates the roles beside them.
It only adds: what staff granted a role on top is left alone.
"""

from typing import Any

from django.contrib.auth.models import Group, Permission

from core.access import ROLES, codename


def roles_ensure(**_: Any) -> None:
    """post_migrate: every role group exists and holds at least the permissions of core.access."""
    for role, granted in ROLES.items():
        group, _created = Group.objects.get_or_create(name=role)
        group.permissions.add(
            *Permission.objects.filter(
                content_type__app_label="core",
                codename__in=[codename(permission) for permission in granted],
            )
        )
