"""Twilio webhooks: stored raw first, signature verified, processed once, answered fast."""

import time
from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from campaigns import services
from campaigns.models import WebhookRequest
from campaigns.providers import webhook_auth_tokens
from core.problems import problem_response

SIGNATURE_HEADER = "X-Twilio-Signature"
IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"


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


def _receive(request: HttpRequest, kind: str) -> tuple[WebhookRequest, HttpResponse | None]:
    headers = {
        name: value
        for name, value in request.headers.items()
        if name not in ("Cookie", "Authorization")  # never store credentials
    }
    webhook = services.webhook_store(
        kind=kind,
        url=request.build_absolute_uri(),
        headers=headers,
        body=request.body.decode("utf-8", errors="replace"),
    )
    if not signature_valid(request):
        services.webhook_reject(webhook=webhook, note="invalid X-Twilio-Signature")
        return webhook, problem_response(
            status=403, code="invalid_signature", detail="The X-Twilio-Signature is not valid."
        )
    return webhook, None


def _process(
    request: HttpRequest,
    kind: str,
    fallback_key: Callable[[dict[str, str]], str],
    respond: Callable[[services.WebhookResult], HttpResponse],
    message_ref: str = "",
) -> HttpResponse:
    """Store, verify and process one webhook, then answer; a bad signature is refused.

    Twilio's idempotency token names a delivery; without one, `fallback_key(params)` does.
    """
    started = time.perf_counter()
    webhook, refusal = _receive(request, kind)
    if refusal is not None:
        return refusal
    params = {key: request.POST.get(key, "") for key in request.POST}
    result = services.webhook_process(
        webhook=webhook,
        params=params,
        dedup_key=request.headers.get(IDEMPOTENCY_HEADER) or fallback_key(params),
        message_ref=message_ref,
    )
    response = respond(result)
    elapsed_ms = (time.perf_counter() - started) * 1000
    WebhookRequest.objects.filter(pk=webhook.pk).update(processing_ms=elapsed_ms)
    return response


@csrf_exempt
@require_POST
def status_webhook(request: HttpRequest) -> HttpResponse:
    """A delivery receipt: moves the message forward by rank, never backwards."""
    return _process(
        request,
        WebhookRequest.Kind.STATUS,
        lambda params: (
            f"{params.get('MessageSid', '')}:"
            f"{params.get('MessageStatus') or params.get('SmsStatus', '')}"
        ),
        lambda result: HttpResponse(status=200, headers=_outcome_header(result)),
        message_ref=request.GET.get("message", ""),
    )


@csrf_exempt
@require_POST
def inbound_webhook(request: HttpRequest) -> HttpResponse:
    """An incoming SMS: STOP / START / HELP keywords change consent and are answered in TwiML."""
    return _process(
        request,
        WebhookRequest.Kind.INBOUND,
        lambda params: f"{params.get('MessageSid', '')}:inbound",
        _twiml_reply,
    )


def _twiml_reply(result: services.WebhookResult) -> HttpResponse:
    twiml = MessagingResponse()
    if result.reply:
        twiml.message(result.reply)
    return HttpResponse(str(twiml), content_type="text/xml", headers=_outcome_header(result))


def _outcome_header(result: services.WebhookResult) -> dict[str, str]:
    return {"X-Webhook-Outcome": str(result.outcome)}
