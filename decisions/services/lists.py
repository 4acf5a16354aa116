"""Named lists that rules read as `lists.<name>`: validate and save their contents."""

from collections.abc import Sequence
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F

from core.audit import audit_record
from core.errors import InvalidInput
from decisions import selectors
from decisions.models import NamedList, NamedListItem
from decisions.services.shared import Actor, insert_once, raise_validation

MAX_LIST_VALUES = 10_000
MAX_LIST_VALUE_LENGTH = 200


def _list_snapshot(named_list: NamedList, values: Sequence[str]) -> dict[str, Any]:
    return {
        "name": named_list.name,
        "description": named_list.description,
        "value_type": named_list.value_type,
        "version": named_list.version,
        "values": sorted(values),
    }


def named_list_validate(*, values: Sequence[Any], value_type: str) -> list[str]:
    """The distinct values, sorted; every value that is not of the type or too long is named by
    its line (its 1-based position in `values`, blank lines counted)."""
    cleaned: set[str] = set()
    problems = []
    for line, raw in enumerate(values, start=1):
        value = str(raw).strip()
        if not value:
            continue
        try:
            selectors.typed_list_value(value, value_type)
        except ValueError:
            problems.append(f"Line {line}: {value!r} is not a valid {value_type}.")
        if len(value) > MAX_LIST_VALUE_LENGTH:
            problems.append(f"Line {line}: longer than {MAX_LIST_VALUE_LENGTH} characters.")
        cleaned.add(value)
    if len(cleaned) > MAX_LIST_VALUES:
        raise InvalidInput(
            f"A list holds at most {MAX_LIST_VALUES} values.",
            errors={"values": [f"At most {MAX_LIST_VALUES}."]},
        )
    if problems:
        raise InvalidInput(problems[0], errors={"values": problems})
    return sorted(cleaned)


@transaction.atomic
def named_list_save(
    *,
    name: str,
    values: Sequence[str],
    value_type: str = NamedList.ValueType.STRING,
    description: str = "",
    actor: Actor = None,
) -> NamedList:
    """Create or replace a named list's contents; a change bumps its version."""
    cleaned = named_list_validate(values=values, value_type=value_type)
    named_list = NamedList.objects.select_for_update().filter(name=name).first()
    before = None
    if named_list is None:
        named_list = NamedList(name=name, value_type=value_type, description=description.strip())
        try:
            named_list.full_clean()
        except ValidationError as error:
            raise_validation(error)
        insert_once(named_list, what=f"list {name}")
        action = "named_list.create"
    else:
        old_values = list(named_list.items.values_list("value", flat=True))
        before = _list_snapshot(named_list, old_values)
        changed = (
            sorted(old_values) != cleaned
            or named_list.value_type != value_type
            or named_list.description != description.strip()
        )
        if not changed:
            return named_list
        named_list.value_type = value_type
        named_list.description = description.strip()
        named_list.version = F("version") + 1
        try:
            named_list.full_clean(exclude=["version"])
        except ValidationError as error:
            raise_validation(error)
        named_list.save(update_fields=["value_type", "description", "version", "updated_at"])
        named_list.refresh_from_db(fields=["version"])
        named_list.items.all().delete()
        action = "named_list.update"
    NamedListItem.objects.bulk_create(
        NamedListItem(named_list=named_list, value=value) for value in cleaned
    )
    audit_record(
        actor=actor,
        action=action,
        target_type="named_list",
        target_id=named_list.name,
        before=before,
        after=_list_snapshot(named_list, cleaned),
    )
    return named_list
