"""Writes of the shared kernel."""

from collections.abc import Iterable
from datetime import datetime
from typing import cast

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from core.access import scopes_parse
from core.audit import Actor, audit_record
from core.errors import InvalidInput, NotFound
from core.models import ApiKey
from core.rows import row_get


def api_key_input_validate(
    *, name: str, scopes: Iterable[str], expires_at: datetime | None
) -> tuple[str, list[str]]:
    """The key's name (stripped) and granted scopes, or InvalidInput naming the field."""
    name = name.strip()
    if not name or len(name) > 50:
        raise InvalidInput(
            "A key needs a name of 1 to 50 characters.", errors={"name": ["1 to 50 characters."]}
        )
    try:
        granted = scopes_parse(scopes)
    except ValueError as error:
        raise InvalidInput(str(error), errors={"scopes": [str(error)]}) from None
    if expires_at is not None and expires_at <= timezone.now():
        raise InvalidInput(
            "A key cannot expire in the past.", errors={"expires_at": ["Must be in the future."]}
        )
    return name, granted


@transaction.atomic
def api_key_create(
    *,
    name: str,
    scopes: Iterable[str] = (),
    expires_at: datetime | None = None,
    actor: Actor = None,
) -> tuple[ApiKey, str]:
    """Create a hashed key with its scopes; returns the row and the raw key (shown once).

    `all` grants every scope; the audit entry says so, since such a key can do anything.
    """
    scopes = list(scopes)
    name, granted = api_key_input_validate(name=name, scopes=scopes, expires_at=expires_at)
    api_key, raw_key = ApiKey.objects.create_key(name=name, scopes=granted, expiry_date=expires_at)
    audit_record(
        actor=actor,
        action="api_key.create",
        target_type="api_key",
        target_id=api_key.pk,
        after={
            "name": name,
            "prefix": api_key.prefix,
            "scopes": granted,
            "all_scopes": "all" in scopes,
            "expires_at": expires_at.isoformat() if expires_at else None,
        },
    )
    return cast(ApiKey, api_key), raw_key


@transaction.atomic
def api_key_revoke(*, prefix: str, actor: Actor = None) -> ApiKey:
    """Revoke a key by its prefix; revoked keys stop authenticating at once."""
    api_key = row_get(
        ApiKey.objects.filter(prefix=prefix),
        missing=NotFound(f"No API key with prefix {prefix}."),
        for_update=True,
    )
    if api_key.revoked:
        return api_key  # revoking twice changes nothing, and says nothing twice
    api_key.revoked = True
    api_key.save(update_fields=["revoked"])
    audit_record(
        actor=actor,
        action="api_key.revoke",
        target_type="api_key",
        target_id=api_key.pk,
        after={"revoked": True},
    )
    return api_key


@transaction.atomic
def demo_admin_ensure(*, username: str, password: str, email: str = "") -> bool:
    """Create the demo superuser unless it exists; True when it was created now."""
    user_model = get_user_model()
    if user_model.objects.filter(username=username).exists():
        return False
    user_model.objects.create_superuser(username=username, email=email, password=password)
    return True
