"""What more than one service module needs: the actor type, model errors as domain errors, an
insert that loses a race politely, and JSON that PostgreSQL's JSONB can store."""

import json
from typing import Any, NoReturn

from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction

from core.audit import Actor
from core.errors import Conflict, InvalidInput
from decisions.exceptions import RuleVersionNotFound
from decisions.models import Rule, RuleVersion

__all__ = ["Actor", "insert_once", "raise_validation", "version_locked"]


def raise_validation(error: ValidationError) -> NoReturn:
    """A model's full_clean() error as InvalidInput naming each field (first message as detail)."""
    errors = {name: list(messages) for name, messages in error.message_dict.items()}
    first = next(iter(errors.items()))
    raise InvalidInput(f"{first[0]}: {first[1][0]}", errors=errors) from None


def version_locked(version: RuleVersion) -> RuleVersion:
    """The version re-read under lock, its rule locked first: every status change of a rule's
    versions (and every answer to an approval) serialises on the rule."""
    Rule.objects.select_for_update().get(pk=version.rule_id)
    locked = RuleVersion.objects.select_for_update().select_related("rule").filter(pk=version.pk)
    found = locked.first()
    if found is None:
        raise RuleVersionNotFound(f"Version {version.pk} is gone.")
    return found


def insert_once(row: models.Model, *, what: str) -> None:
    """Insert a row whose natural key a concurrent request may have just taken: 409, not 500."""
    try:
        with transaction.atomic():
            row.save()
    except IntegrityError:
        raise Conflict(f"The {what} was created concurrently; retry.") from None


def json_for_database(value: Any, *, field: str) -> Any:
    """A JSON round trip that refuses text PostgreSQL's JSONB cannot store."""
    if _unstorable(value):
        raise InvalidInput(
            f"{field} contains a NUL character or an unpaired surrogate.",
            errors={field: ["NUL characters and unpaired surrogates are not allowed."]},
        )
    return json.loads(json.dumps(value))


def _unstorable(value: Any) -> bool:
    """Text PostgreSQL cannot store: NUL (JSONB refuses it) or a lone surrogate (not UTF-8)."""
    if isinstance(value, str):
        if "\x00" in value:
            return True
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_unstorable(key) or _unstorable(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_unstorable(item) for item in value)
    return False
