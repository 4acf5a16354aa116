"""The real provider: Twilio's official client, with a configurable API base URL."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import lru_cache
from typing import Any

import requests
from django.conf import settings
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

# The client loads its API modules lazily, on the first request: several seconds on a busy
# machine. Loading them with this module (before a worker forks) keeps every send fast.
from twilio.rest.api.v2010.account.message import MessageList  # noqa: F401

from campaigns.providers import (
    TRANSIENT_ERROR_CODES,
    ProviderError,
    ProviderOutcomeUnknown,
    ProviderReceipt,
    ProviderStatus,
)

TWILIO_API = "https://api.twilio.com"


class BaseUrlHttpClient(TwilioHttpClient):
    """Sends the client's requests to another base URL (a regional proxy, a fake in tests)."""

    def __init__(self, base_url: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.base_url = base_url.rstrip("/")

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        if self.base_url and url.startswith(TWILIO_API):
            url = self.base_url + url[len(TWILIO_API) :]
        return super().request(method, url, *args, **kwargs)


@lru_cache(maxsize=8)
def _client(account_sid: str, auth_token: str, base_url: str, timeout: float) -> Client:
    # One pooled client per configuration and process: keep-alive connections to the API.
    http_client = BaseUrlHttpClient(base_url, timeout=timeout)
    return Client(account_sid, auth_token, http_client=http_client)


class TwilioProvider:
    name = "twilio"

    def __init__(self) -> None:
        if not settings.TWILIO_ACCOUNT_SID or not settings.TWILIO_AUTH_TOKEN:
            raise ProviderError(
                "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN must be set for SMS_PROVIDER=twilio.",
                code="configuration",
                transient=True,
            )
        self.client = _client(
            settings.TWILIO_ACCOUNT_SID,
            settings.TWILIO_AUTH_TOKEN,
            settings.TWILIO_API_BASE_URL,
            float(settings.CAMPAIGNS_PROVIDER_TIMEOUT_SECONDS),
        )

    def send(self, *, to: str, body: str, status_callback: str) -> ProviderReceipt:
        try:
            message = self.client.messages.create(
                to=to,
                from_=settings.TWILIO_FROM_NUMBER,
                body=body,
                status_callback=status_callback,
            )
        except TwilioRestException as error:
            code = int(error.code or 0)
            transient = error.status == 429 or error.status >= 500 or code in TRANSIENT_ERROR_CODES
            raise ProviderError(
                str(error.msg),
                code=str(error.code or error.status),
                transient=transient,
                http_status=error.status,
            ) from error
        except (requests.ConnectionError, requests.ConnectTimeout) as error:
            if isinstance(error, requests.ConnectTimeout) or _refused(error):
                # The request never left: safe to try again.
                raise ProviderError(
                    f"Connection failed: {error}", code="connection", transient=True
                ) from error
            raise ProviderOutcomeUnknown(f"Connection broke after sending: {error}") from error
        except requests.Timeout as error:  # a read timeout: Twilio may have accepted it
            raise ProviderOutcomeUnknown(f"No answer in time: {error}") from error
        except TwilioException as error:
            raise ProviderOutcomeUnknown(f"Unreadable answer: {error}") from error
        return ProviderReceipt(sid=str(message.sid), status=str(message.status))

    def fetch(self, *, sid: str) -> ProviderStatus:
        with _reads():
            return _status(self.client.messages(sid).fetch())

    def find_sent(self, *, to: str, since: datetime, body: str) -> list[ProviderStatus]:
        with _reads():
            messages = self.client.messages.list(to=to, date_sent_after=since, limit=50)
        return [_status(message) for message in messages if (message.body or "") == body]


@contextmanager
def _reads() -> Iterator[None]:
    """Errors of a read (fetch, list) as ProviderError: reads are always safe to repeat."""
    try:
        yield
    except TwilioRestException as error:
        raise ProviderError(
            str(error.msg),
            code=str(error.code or error.status),
            transient=error.status >= 500 or error.status == 429,
            http_status=error.status,
        ) from error
    except (requests.RequestException, TwilioException) as error:
        raise ProviderError(str(error), code="connection", transient=True) from error


def _status(message: Any) -> ProviderStatus:
    return ProviderStatus(
        sid=str(message.sid),
        status=str(message.status),
        error_code=str(message.error_code or ""),
        to=str(message.to or ""),
        body=str(message.body or ""),
    )


def _refused(error: Exception) -> bool:
    text = repr(error)
    return any(
        marker in text
        for marker in ("Connection refused", "NewConnectionError", "Name or service not known")
    )
