"""The real provider: Twilio's official client, on a lean HTTP client, with a configurable API
base URL."""

import json
import logging
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests.certs
import urllib3
from django.conf import settings
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http import HttpClient
from twilio.http.response import Response
from twilio.rest import Client

# The client loads its API modules lazily, on the first request: several seconds on a busy
# machine. Loading them with this module (before a worker forks) keeps every send fast.
from twilio.rest.api.v2010.account.message import MessageList  # noqa: F401
from urllib3.exceptions import ConnectTimeoutError, HTTPError, NewConnectionError

from campaigns.providers import (
    TRANSIENT_ERROR_CODES,
    ProviderError,
    ProviderOutcomeUnknown,
    ProviderReceipt,
    ProviderStatus,
)

TWILIO_API = "https://api.twilio.com"
JSON_TYPES = ("application/json", "application/scim+json")
_logger = logging.getLogger("twilio.http_client")


class PooledHttpClient(HttpClient):
    """Twilio's HTTP client interface on urllib3's connection pool, sending to a configurable
    base URL (a regional proxy, a fake in tests).

    The SDK's default client goes through a `requests` session, whose per-call machinery
    (environment proxies and netrc looked up on every call, hooks, cookies) cost more CPU than
    the call itself: 0.74 ms against 1.0 to 1.5 ms a send, client and a local server together
    (ADR 0012). The proxy from the environment is read once, here. No retries: a send is never
    repeated blindly (the caller decides from the error what is safe).
    """

    def __init__(self, base_url: str, *, timeout: float, pool_size: int = 16):
        super().__init__(_logger, False, timeout)
        self.base_url = base_url.rstrip("/")
        target = self.base_url or TWILIO_API
        host = urlsplit(target).hostname or ""
        proxy = urllib.request.getproxies().get(urlsplit(target).scheme)
        options: dict[str, Any] = {
            "maxsize": pool_size,
            "retries": False,
            "ca_certs": requests.certs.where(),
        }
        self.pool: urllib3.PoolManager = (
            urllib3.ProxyManager(proxy, **options)
            if proxy and not urllib.request.proxy_bypass(host)
            else urllib3.PoolManager(**options)
        )

    def request(
        self,
        method: str,
        uri: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        url = uri
        if self.base_url and url.startswith(TWILIO_API):
            url = self.base_url + url[len(TWILIO_API) :]
        if params:
            url = f"{url}?{urlencode(params, doseq=True)}"
        headers = dict(headers or {})
        body = None
        if data is not None:
            if headers.get("Content-Type") in JSON_TYPES:
                body = json.dumps(data)
            else:
                body = urlencode(data, doseq=True)
                headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        if auth is not None:
            headers.update(urllib3.make_headers(basic_auth=f"{auth[0]}:{auth[1]}"))
        response = self.pool.request(
            method.upper(),
            url,
            body=body,
            headers=headers,
            timeout=timeout or self.timeout,
            redirect=allow_redirects,
        )
        return Response(response.status, response.data.decode("utf-8"), response.headers)


@lru_cache(maxsize=8)
def _client(account_sid: str, auth_token: str, base_url: str, timeout: float) -> Client:
    # One pooled client per configuration and process: keep-alive connections to the API.
    http_client = PooledHttpClient(base_url, timeout=timeout)
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
        except (ConnectTimeoutError, NewConnectionError) as error:
            # The request never left (refused, unresolvable, no connection in time): safe to
            # try again.
            raise ProviderError(
                f"Connection failed: {error}", code="connection", transient=True
            ) from error
        except HTTPError as error:  # a read timeout, a connection broken after sending, ...
            raise ProviderOutcomeUnknown(f"No complete answer: {error}") from error
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
    except (HTTPError, TwilioException) as error:
        raise ProviderError(str(error), code="connection", transient=True) from error


def _status(message: Any) -> ProviderStatus:
    return ProviderStatus(
        sid=str(message.sid),
        status=str(message.status),
        error_code=str(message.error_code or ""),
        to=str(message.to or ""),
        body=str(message.body or ""),
    )
