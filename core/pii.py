"""Personal data shown only to those allowed to see it: masks, and an audit of unmasked reads.

Phone numbers, message bodies and applicants' features are masked for anyone without the
`pii:read` scope (people: the compliance role). Each read of them unmasked leaves an audit entry.
"""

from collections.abc import Mapping
from typing import Any

import phonenumbers
from django.db import transaction

from core.access import Scope
from core.audit import Actor, audit_record
from core.permissions import principal_may

MASK = "•"


def phone_mask(phone: str) -> str:
    """`+447700900123` → `+44 7•••• ••123`: the country code and last three digits stay."""
    if not phone:
        return phone
    digits = phone.lstrip("+")
    if len(digits) <= 5:
        return MASK * len(phone)
    try:
        country = str(phonenumbers.parse(phone).country_code)
    except phonenumbers.NumberParseException:
        country = digits[:2]
    middle = digits[len(country) : -3]
    first, rest = middle[:1], middle[1:]
    head = MASK * min(len(rest), 4)
    tail = MASK * max(len(rest) - 4, 0)
    return f"+{country} {first}{head} {tail}{digits[-3:]}".replace("  ", " ")


def text_mask(text: str) -> str:
    """A message body: its length shows, its words do not."""
    return f"[{len(text)} characters hidden]" if text else text


def features_mask(features: Mapping[str, Any]) -> dict[str, Any]:
    """An applicant's features: the names stay (drivers refer to them), the values go."""
    return dict.fromkeys(features, MASK * 3)


def may_read_pii(principal: Any) -> bool:
    return principal_may(principal, Scope.PII_READ)


def pii_read_audit(*, actor: Actor, target_type: str, target_ids: list[str] | list[int]) -> None:
    """Record that `actor` saw these rows unmasked (one entry per read, naming every row)."""
    if not target_ids:
        return
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="pii.read",
            target_type=target_type,
            target_id=str(target_ids[0]) if len(target_ids) == 1 else f"{len(target_ids)} rows",
            after={"ids": [str(target) for target in target_ids[:500]]},
        )
