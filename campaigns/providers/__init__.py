"""SMS providers: one small interface, `twilio` (the real API) and `simulator` (the default).

A provider call ends in exactly one of four ways, and the caller acts on which:
- `ProviderReceipt`: accepted, with the provider's id;
- `ProviderError(transient=True)`: the request did not take effect (429, 5xx, refused), retry;
- `ProviderError(transient=False)`: refused for good (21610 unsubscribed, 21211 bad number);
- `ProviderOutcomeUnknown`: the request may have left (a read timeout): never retry blindly.
"""

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string

# Twilio error codes that are worth another try; everything else 4xx is final.
TRANSIENT_ERROR_CODES = frozenset({20429, 20003, 20500, 20503, 30001, 30500})
UNSUBSCRIBED_CODE = "21610"
BAD_NUMBER_CODES = frozenset({"21211", "21614", "21612", "21408"})


@dataclass(frozen=True)
class ProviderReceipt:
    sid: str
    status: str


@dataclass(frozen=True)
class ProviderStatus:
    sid: str
    status: str
    error_code: str = ""
    to: str = ""
    body: str = ""


class ProviderError(Exception):
    """The provider refused, with its error code; `transient` says whether to retry."""

    def __init__(self, message: str, *, code: str, transient: bool, http_status: int = 0):
        super().__init__(message)
        self.message = message
        self.code = code
        self.transient = transient
        self.http_status = http_status


class ProviderOutcomeUnknown(Exception):
    """The request may or may not have reached the provider."""


class SmsProvider(Protocol):
    name: str

    def send(self, *, to: str, body: str, status_callback: str) -> ProviderReceipt: ...

    def fetch(self, *, sid: str) -> ProviderStatus: ...

    def find_sent(self, *, to: str, since: datetime, body: str) -> list[ProviderStatus]: ...


# Backends by dotted path, as Django names its cache and e-mail backends: only the configured
# one is imported (the twilio client alone takes about half a second to import).
PROVIDERS = {
    "twilio": "campaigns.providers.twilio.TwilioProvider",
    "simulator": "campaigns.providers.simulator.SimulatorProvider",
}


def provider_get(name: str | None = None) -> SmsProvider:
    """The configured provider (SMS_PROVIDER), built fresh so settings overrides apply."""
    name = name or settings.SMS_PROVIDER
    if name not in PROVIDERS:
        raise ValueError(f"Unknown SMS_PROVIDER {name!r}; use 'twilio' or 'simulator'.")
    provider: SmsProvider = import_string(PROVIDERS[name])()
    return provider


def simulator_auth_token() -> str:
    """The simulator signs its callbacks with a token derived from SECRET_KEY."""
    return hashlib.sha256(f"simulator:{settings.SECRET_KEY}".encode()).hexdigest()[:32]


def webhook_auth_tokens() -> list[str]:
    """Tokens accepted on webhook signatures: primary, secondary (rotation), simulator's."""
    tokens = [settings.TWILIO_AUTH_TOKEN, settings.TWILIO_SECONDARY_AUTH_TOKEN]
    if settings.SMS_PROVIDER == "simulator":
        tokens.append(simulator_auth_token())
    return [token for token in tokens if token]
