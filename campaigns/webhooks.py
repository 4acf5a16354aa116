"""Twilio webhooks: bounded, signature verified first, stored, processed once, answered fast.

In order: an address with too many rejected requests gets 429 (nothing read, nothing stored);
a body over WEBHOOK_MAX_BODY_BYTES gets 413 (not read); a request without a valid
X-Twilio-Signature gets 403 and is kept only in bounded form (its body cut to
WEBHOOK_REJECTED_BODY_KEEP_BYTES) and counted against its address. Only then is the request
stored whole and processed. The signature header is never stored. Duplicates are recognised by
what Twilio signs (`MessageSid` with `MessageStatus`, or the whole signed form when there is no
SID), never by the unsigned `I-Twilio-Idempotency-Token` header, which anyone replaying a
signed request could change.
"""

import hashlib
import json
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from rest_framework.throttling import BaseThrottle
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from campaigns import services
from campaigns.models import WebhookRequest
from campaigns.providers import webhook_auth_tokens
from core import telemetry
from core.problems import problem_response

SIGNATURE_HEADER = "X-Twilio-Signature"
# Never stored: credentials, and the signature (a stored signature plus the stored body is a
# request anyone reading the table could replay).
UNSTORED_HEADERS = frozenset({"cookie", "authorization", SIGNATURE_HEADER.lower()})


def candidate_urls(request: HttpRequest) -> list[str]:
    """The URL as Twilio saw it: behind a proxy that is PUBLIC_BASE_URL + path, else the URL
    this server received (the validator itself tries each with and without the default port)."""
    path = request.get_full_path()
    public = urlsplit(settings.PUBLIC_BASE_URL)
    urls = [f"{public.scheme}://{public.netloc}{path}", request.build_absolute_uri(path)]
    return list(dict.fromkeys(urls))


def signature_valid(request: HttpRequest) -> bool:
    signature = request.headers.get(SIGNATURE_HEADER, "")
    if not signature:
        return False
    params = request.POST
    return any(
        RequestValidator(token).validate(url, params, signature)
        for token in webhook_auth_tokens()
        for url in candidate_urls(request)
    )


def _address(request: HttpRequest) -> str:
    return str(BaseThrottle().get_ident(request))  # type: ignore[arg-type]


def _rejections_key(request: HttpRequest) -> str:
    return f"webhook-rejections:{_address(request)}"


def _throttled(request: HttpRequest) -> HttpResponse | None:
    """429 for an address whose recent requests were rejected too often."""
    if cache.get(_rejections_key(request), 0) < settings.WEBHOOK_REJECTIONS_PER_ADDRESS:
        return None
    window = settings.WEBHOOK_REJECTION_WINDOW_SECONDS
    response = problem_response(
        status=429,
        code="throttled",
        detail="Too many rejected webhook requests from this address; try again later.",
    )
    response["Retry-After"] = str(window)
    return response


def _rejection_count(request: HttpRequest) -> None:
    key = _rejections_key(request)
    window = settings.WEBHOOK_REJECTION_WINDOW_SECONDS
    if not cache.add(key, 1, timeout=window):
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.add(key, 1, timeout=window)


def _too_large(request: HttpRequest) -> HttpResponse | None:
    """413 before the body is read when it says it is too long (or turns out to be)."""
    limit = settings.WEBHOOK_MAX_BODY_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared <= limit and len(request.body) <= limit:
        return None
    _rejection_count(request)
    return problem_response(
        status=413, code="body_too_large", detail=f"Webhook bodies are limited to {limit} bytes."
    )


def _stored_headers(request: HttpRequest) -> dict[str, str]:
    return {
        name: value[:500]
        for name, value in list(request.headers.items())[:100]
        if name.lower() not in UNSTORED_HEADERS
    }


def _receive(request: HttpRequest, kind: str) -> tuple[WebhookRequest | None, HttpResponse | None]:
    """Refuse what is throttled, too large or unsigned; store what is left, whole."""
    refusal = _throttled(request) or _too_large(request)
    if refusal is not None:
        reason = "throttled" if refusal.status_code == 429 else "too_large"
        telemetry.webhook_rejection_observe(kind=kind, reason=reason)
        return None, refusal
    body = request.body.decode("utf-8", errors="replace")
    if not signature_valid(request):
        _rejection_count(request)
        services.webhook_reject(
            kind=kind,
            url=request.build_absolute_uri(),
            headers=_stored_headers(request),
            body=body[: settings.WEBHOOK_REJECTED_BODY_KEEP_BYTES],
            note="invalid X-Twilio-Signature",
        )
        return None, problem_response(
            status=403, code="invalid_signature", detail="The X-Twilio-Signature is not valid."
        )
    webhook = services.webhook_store(
        kind=kind, url=request.build_absolute_uri(), headers=_stored_headers(request), body=body
    )
    return webhook, None


def signed_dedup_key(params: dict[str, str], kind: str) -> str:
    """What makes two deliveries the same, from signed fields only."""
    sid = params.get("MessageSid") or params.get("SmsSid") or ""
    if kind == WebhookRequest.Kind.STATUS:
        status = (params.get("MessageStatus") or params.get("SmsStatus") or "").lower()
    else:
        status = "inbound"
    if sid:
        return f"{sid}:{status}"
    canonical = json.dumps(sorted(params.items()), separators=(",", ":"))
    return "form:" + hashlib.sha256(canonical.encode()).hexdigest()


def _process(
    request: HttpRequest,
    kind: str,
    respond: Callable[[services.WebhookResult], HttpResponse],
    message_ref: str = "",
) -> HttpResponse:
    """Refuse, or store, process once per signed key, and answer.

    One transaction, so one commit (the WAL flush is most of a webhook's time, and a receipt's
    commit does not wait for it: `webhook_durability_set`): the raw request, its processing in a
    savepoint, and the processing time. If processing fails, the savepoint
    is rolled back and the raw request is still committed (`received`, for a replay); the 500
    makes the provider deliver it again.
    """
    started = time.perf_counter()
    failure: Exception | None = None
    with transaction.atomic():
        webhook, refusal = _receive(request, kind)
        if refusal is not None:
            return refusal
        assert webhook is not None
        services.webhook_durability_set(kind=kind)
        params = {key: request.POST.get(key, "") for key in request.POST}
        try:
            result = services.webhook_process(
                webhook=webhook,
                params=params,
                dedup_key=signed_dedup_key(params, kind),
                message_ref=message_ref,
            )
        except Exception as error:
            failure = error
        else:
            response = respond(result)
            elapsed_ms = (time.perf_counter() - started) * 1000
            WebhookRequest.objects.filter(pk=webhook.pk).update(processing_ms=elapsed_ms)
    if failure is not None:
        raise failure
    return response


@csrf_exempt
@require_POST
def status_webhook(request: HttpRequest) -> HttpResponse:
    """A delivery receipt: moves the message forward by rank, never backwards."""
    return _process(
        request,
        WebhookRequest.Kind.STATUS,
        lambda result: HttpResponse(status=200, headers=_outcome_header(result)),
        message_ref=request.GET.get("message", ""),
    )


@csrf_exempt
@require_POST
def inbound_webhook(request: HttpRequest) -> HttpResponse:
    """An incoming SMS: STOP / START / HELP keywords change consent and are answered in TwiML."""
    return _process(request, WebhookRequest.Kind.INBOUND, _twiml_reply)


def _twiml_reply(result: services.WebhookResult) -> HttpResponse:
    twiml = MessagingResponse()
    if result.reply:
        twiml.message(result.reply)
    return HttpResponse(str(twiml), content_type="text/xml", headers=_outcome_header(result))


def _outcome_header(result: services.WebhookResult) -> dict[str, str]:
    return {"X-Webhook-Outcome": str(result.outcome)}
