"""Factories for the campaigns tests: real rows through the real services."""

from itertools import count
from typing import Any

from campaigns import services
from campaigns.models import Campaign, Contact

_numbers = count(1000)
OPEN_WINDOW = {"start": "00:00", "end": "23:59"}


def contact_factory(
    *,
    phone: str | None = None,
    attributes: dict[str, Any] | None = None,
    consent: dict[str, bool] | None = None,
    time_zone: str = "UTC",
) -> Contact:
    return services.contact_create(
        phone=phone or f"+1415555{next(_numbers) % 10000:04d}",
        attributes={"first_name": "Ada", "plan": "gold"} if attributes is None else attributes,
        consent={"marketing": True} if consent is None else consent,
        time_zone=time_zone,
    )


def contact_stopped_factory(*, phone: str) -> Contact:
    """A contact who texted STOP: opted out of everything."""
    contact = contact_factory(phone=phone)
    services.consent_change(contact=contact, topic="*", action="opt_out", source="sms_keyword")
    return contact


def campaign_config(**overrides: Any) -> dict[str, Any]:
    return {
        "segment": "contact.attributes.plan == 'gold'",
        "template": "Hi {{ contact.attributes.first_name }}, your gold offer is waiting.",
        "topic": "marketing",
        "send_window": OPEN_WINDOW,
        "rate_per_second": 10,
        **overrides,
    }


def campaign_factory(*, name: str = "Gold offer", **overrides: Any) -> Campaign:
    return services.campaign_create(name=name, config=campaign_config(**overrides))
