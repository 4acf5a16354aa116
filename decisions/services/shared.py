"""What more than one service module needs: the actor type, model errors as domain errors, and
an insert that loses a race politely."""

from typing import NoReturn

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
