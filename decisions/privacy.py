"""Personal data in decisions, shown to a reader as they may see it: the event payload, the
applicant's features of the risk request and the phone numbers actions were sent to are masked
for anyone without `pii:read`; an unmasked read is audited (core.pii)."""

from typing import Any

from core.pii import MASK, features_mask, may_read_pii, phone_mask, pii_read_audit, text_mask


def risk_request_masked(risk_request: dict[str, Any] | None) -> dict[str, Any] | None:
    """The model stays visible, the applicant's features do not."""
    if not risk_request:
        return risk_request
    return {**risk_request, "features": features_mask(risk_request.get("features") or {})}


def actions_masked(actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each action's number masked, also where an error message quotes it."""
    return [_action_masked(action) for action in actions]


def _action_masked(action: dict[str, Any]) -> dict[str, Any]:
    if not action.get("to"):
        return dict(action)
    number = str(action["to"])
    shown = {**action, "to": phone_mask(number)}
    if isinstance(action.get("error"), str):
        shown["error"] = action["error"].replace(number, shown["to"])
    return shown


def reasons_masked(reasons: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drivers keep their feature and text; the applicant's value goes."""
    return [
        {**reason, "value": MASK * 3} if reason.get("kind") == "driver" else dict(reason)
        for reason in reasons
    ]


def reader_sees_pii(reader: Any, *, decision_ids: list[int]) -> bool:
    """Whether `reader` sees these decisions unmasked; if so the read is audited, once."""
    if not may_read_pii(reader):
        return False
    pii_read_audit(actor=reader, target_type="decision", target_ids=decision_ids)
    return True


def message_shown(message: Any, *, unmasked: bool) -> Any:
    """A decision's SMS message with `shown_phone` / `shown_body` for the page."""
    phone, body = message.contact.phone, message.body
    message.shown_phone = phone if unmasked else phone_mask(phone)
    message.shown_body = body if unmasked else text_mask(body)
    return message


def drivers_shown(drivers: list[dict[str, Any]], *, unmasked: bool) -> list[dict[str, Any]]:
    """A score's drivers: each repeats the applicant's feature value, masked as the features."""
    if unmasked:
        return drivers
    return [{**driver, "value": MASK * 3} for driver in drivers]
