"""Phone numbers: E.164 normalisation and the time zones a number may be in."""

from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import phonenumbers
from django.conf import settings
from phonenumbers import timezone as phone_timezone

from campaigns.exceptions import InvalidPhone

UNKNOWN_ZONE = "Etc/Unknown"


def phone_normalize(raw: object, *, field: str = "phone") -> str:
    """Any input form of a valid number -> its E.164 key; anything else is a field error."""
    text = str(raw or "").strip()
    if not text or len(text) > 40:
        raise InvalidPhone("A phone number is required (at most 40 characters).", field=field)
    region = None if text.startswith("+") else settings.CAMPAIGNS_DEFAULT_REGION
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as error:
        raise InvalidPhone(f"'{text}' is not a phone number: {error}.", field=field) from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone(f"'{text}' is not a valid phone number.", field=field)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_region(phone: str) -> str:
    """The ISO region of an E.164 number ("US", "GB", ...), or "" when unknown."""
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(phone)) or ""
    except phonenumbers.NumberParseException:
        return ""


@lru_cache(maxsize=65536)
def _zones_for_number(phone: str) -> tuple[str, ...]:
    try:
        number = phonenumbers.parse(phone)
    except phonenumbers.NumberParseException:
        return ()
    zones = tuple(zone for zone in phone_timezone.time_zones_for_number(number) if zone)
    return tuple(zone for zone in zones if zone != UNKNOWN_ZONE and zone_is_known(zone))


def candidate_zones(phone: str, override: str = "") -> tuple[str, ...]:
    """The zones the recipient may be in: the override, else libphonenumber's mapping.

    A number libphonenumber cannot place falls back to CAMPAIGNS_FALLBACK_TIME_ZONE, so it is
    still held to some window rather than sent at any hour.
    """
    if override:
        return (override,)
    return _zones_for_number(phone) or (settings.CAMPAIGNS_FALLBACK_TIME_ZONE,)


@lru_cache(maxsize=1)
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def zone_is_known(name: str) -> bool:
    if name not in _known_zones():
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True
