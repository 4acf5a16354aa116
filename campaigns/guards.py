"""Guard-rails against SMS pumping that every path to the provider shares.

SMS pumping (toll fraud) makes a product send messages to premium or far-away numbers whose
operators share the fees: the defence is to reach only the countries the business serves and
to bound how many messages one number can make us send.
"""

from django.conf import settings

from campaigns.phones import phone_region

COUNTRY_NOT_ALLOWED = "country_not_allowed"
DAILY_CAP = "daily_cap"


def country_refusal(*, phone: str, region: str = "") -> str:
    """`country_not_allowed` when the number's region is outside SMS_ALLOWED_COUNTRIES, else ""."""
    region = region or phone_region(phone)
    if region and region.upper() in settings.SMS_ALLOWED_COUNTRIES:
        return ""
    return COUNTRY_NOT_ALLOWED


def allowed_regions() -> frozenset[str]:
    """The allow-list as a set, for loops over many contacts."""
    return frozenset(code.upper() for code in settings.SMS_ALLOWED_COUNTRIES)
