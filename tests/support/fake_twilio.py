"""A fake Twilio REST API on loopback: the real `twilio` client talks to it over HTTP.

Implements what our provider calls: Messages create, fetch and list. It returns SIDs, refuses
configured numbers with Twilio error codes, can fail transiently or hang (to provoke an unknown
outcome), and posts signed status callbacks (X-Twilio-Signature computed with twilio's own
RequestValidator) to each message's StatusCallback, optionally out of order or twice.

    with FakeTwilio(account_sid="AC...", auth_token="secret") as fake:
        fake.refuse("+14155550100", code=21610)
        settings.TWILIO_API_BASE_URL = fake.url
"""

import json
import re
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from twilio.request_validator import RequestValidator

ERROR_MESSAGES = {
    21211: "The 'To' number is not a valid phone number.",
    21610: "Attempt to send to unsubscribed recipient",
    21614: "'To' number is not a valid mobile number",
    20429: "Too Many Requests",
    20500: "Internal Server Error",
}
CREATE = re.compile(r"^/2010-04-01/Accounts/(?P<account>\w+)/Messages\.json$")
FETCH = re.compile(r"^/2010-04-01/Accounts/(?P<account>\w+)/Messages/(?P<sid>\w+)\.json$")


@dataclass
class FakeMessage:
    sid: str
    to: str
    from_: str
    body: str
    status_callback: str
    status: str = "queued"
    error_code: int | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def as_json(self, account_sid: str) -> dict[str, Any]:
        return {
            "sid": self.sid,
            "account_sid": account_sid,
            "to": self.to,
            "from": self.from_,
            "body": self.body,
            "status": self.status,
            "error_code": self.error_code,
            "error_message": ERROR_MESSAGES.get(self.error_code or 0),
            "num_segments": "1",
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "date_created": self.created_at.strftime("%a, %d %b %Y %H:%M:%S +0000"),
            "date_sent": self.created_at.strftime("%a, %d %b %Y %H:%M:%S +0000"),
            "uri": f"/2010-04-01/Accounts/{account_sid}/Messages/{self.sid}.json",
        }


class FakeTwilio:
    """The server and its knobs; thread-safe, start with `with` or start()/stop()."""

    def __init__(
        self,
        *,
        account_sid: str = "AC" + "1" * 32,
        auth_token: str = "fake-auth-token",
        callback_delay: float = 0.05,
    ):
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.callback_delay = callback_delay
        self.lock = threading.Lock()
        self.messages: dict[str, FakeMessage] = {}
        self.create_calls: list[dict[str, str]] = []
        self.refusals: dict[str, tuple[int, int]] = {}
        self.transient_failures: dict[str, int] = defaultdict(int)
        self.hangs: dict[str, float] = {}
        self.final_statuses: dict[str, tuple[str, int | None]] = {}
        self.callback_orders: dict[str, list[str]] = {}
        self.silent: set[str] = set()
        self.duplicate_callbacks = False
        self.send_callbacks = True
        self.callback_responses: list[int] = []
        self._server: ThreadingHTTPServer | None = None

    # --- knobs --------------------------------------------------------------------------------
    def refuse(self, to: str, *, code: int, status: int = 400) -> None:
        """Every create to `to` fails with this Twilio error code."""
        self.refusals[to] = (status, code)

    def fail_transiently(self, to: str, *, times: int) -> None:
        """The next `times` creates to `to` answer 503 (code 20500)."""
        self.transient_failures[to] = times

    def hang(self, to: str, *, seconds: float) -> None:
        """Accept the message, then answer only after `seconds` (a client read timeout)."""
        self.hangs[to] = seconds

    def deliver_as(self, to: str, *, status: str, error_code: int | None = None) -> None:
        self.final_statuses[to] = (status, error_code)

    def no_callbacks(self, to: str) -> None:
        """Post no callbacks for `to`; its messages settle at once (fetch/list tell the truth)."""
        self.silent.add(to)

    def callbacks_in_order(self, to: str, statuses: list[str]) -> None:
        """Post these statuses, in this order (e.g. ["delivered", "sent"] = out of order)."""
        self.callback_orders[to] = statuses

    # --- observations -------------------------------------------------------------------------
    def creates_to(self, to: str) -> int:
        with self.lock:
            return sum(1 for call in self.create_calls if call["To"] == to)

    def accepted(self) -> list[FakeMessage]:
        with self.lock:
            return list(self.messages.values())

    # --- server -------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FakeTwilio":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body leave in two writes: with Nagle's algorithm on, the body waits
            # for the client's delayed ACK of the headers, 40 ms a response on Linux.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = {
                    key: values[0]
                    for key, values in parse_qs(self.rfile.read(length).decode()).items()
                }
                match = CREATE.match(urlsplit(self.path).path)
                if not match:
                    return self._json(404, {"code": 20404, "message": "Not found", "status": 404})
                fake._create(self, form)

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                fetched = FETCH.match(parts.path)
                if fetched:
                    with fake.lock:
                        message = fake.messages.get(fetched["sid"])
                    if message is None:
                        return self._json(
                            404, {"code": 20404, "message": "Not found", "status": 404}
                        )
                    return self._json(200, message.as_json(fake.account_sid))
                if CREATE.match(parts.path):
                    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
                    with fake.lock:
                        found = [
                            message.as_json(fake.account_sid)
                            for message in fake.messages.values()
                            if message.to == query.get("To", message.to)
                        ]
                    return self._json(
                        200,
                        {
                            "messages": found,
                            "page": 0,
                            "page_size": 50,
                            "first_page_uri": parts.path,
                            "next_page_uri": None,
                            "previous_page_uri": None,
                            "uri": parts.path,
                            "start": 0,
                            "end": len(found),
                        },
                    )
                return self._json(404, {"code": 20404, "message": "Not found", "status": 404})

            def _json(self, status: int, body: dict[str, Any]) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FakeTwilio":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- behaviour ----------------------------------------------------------------------------
    def _create(self, handler: Any, form: dict[str, str]) -> None:
        to = form.get("To", "")
        with self.lock:
            self.create_calls.append(form)
            refusal = self.refusals.get(to)
            transient = self.transient_failures.get(to, 0)
            if transient:
                self.transient_failures[to] = transient - 1
        if refusal:
            status, code = refusal
            return handler._json(
                status,
                {
                    "code": code,
                    "message": ERROR_MESSAGES.get(code, "Error"),
                    "status": status,
                    "more_info": f"https://www.twilio.com/docs/errors/{code}",
                },
            )
        if transient:
            return handler._json(
                503, {"code": 20500, "message": ERROR_MESSAGES[20500], "status": 503}
            )
        message = FakeMessage(
            sid="SM" + uuid.uuid4().hex,
            to=to,
            from_=form.get("From", ""),
            body=form.get("Body", ""),
            status_callback=form.get("StatusCallback", ""),
        )
        with self.lock:
            self.messages[message.sid] = message
            if to in self.silent:
                message.status, message.error_code = self.final_statuses.get(
                    to, ("delivered", None)
                )
        if self.send_callbacks and message.status_callback and to not in self.silent:
            threading.Thread(target=self._post_callbacks, args=(message,), daemon=True).start()
        delay = self.hangs.get(to)
        if delay:
            time.sleep(delay)
        handler._json(201, message.as_json(self.account_sid))

    def _post_callbacks(self, message: FakeMessage) -> None:
        final, error_code = self.final_statuses.get(message.to, ("delivered", None))
        statuses = self.callback_orders.get(message.to, ["sent", final])
        for status in statuses:
            time.sleep(self.callback_delay)
            with self.lock:
                if status == final:
                    message.status, message.error_code = final, error_code
                elif message.status == "queued":
                    message.status = status
            self.post_status(message, status, error_code if status == final else None)
            if self.duplicate_callbacks:
                self.post_status(message, status, error_code if status == final else None)

    def post_status(self, message: FakeMessage, status: str, error_code: int | None) -> int:
        """Post one signed status callback, as Twilio does; returns the HTTP status."""
        params = {
            "MessageSid": message.sid,
            "SmsSid": message.sid,
            "AccountSid": self.account_sid,
            "From": message.from_,
            "To": message.to,
            "MessageStatus": status,
            "SmsStatus": status,
            "ApiVersion": "2010-04-01",
        }
        if error_code:
            params["ErrorCode"] = str(error_code)
        return self.post_signed(message.status_callback, params, token=f"{message.sid}-{status}")

    def post_signed(self, url: str, params: dict[str, str], *, token: str = "") -> int:
        signature = RequestValidator(self.auth_token).compute_signature(url, params)
        headers = {"X-Twilio-Signature": signature}
        if token:
            headers["I-Twilio-Idempotency-Token"] = token
        try:
            response = requests.post(url, data=params, headers=headers, timeout=10)
        except requests.RequestException:
            self.callback_responses.append(0)
            return 0
        self.callback_responses.append(response.status_code)
        return response.status_code
