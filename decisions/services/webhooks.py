"""Outbound webhooks: endpoints staff register, and the deliveries rule actions make.

A `webhook` action of a deciding rule makes one delivery row per (decision, action) in the
decision's transaction; a Celery task sends it after commit. Each try first claims the row with
a conditional update (so two workers never send it at once, and a delivered one never again),
is recorded as an attempt on the decision's trail, and a failed try is retried with
exponential backoff up to DECISIONS_WEBHOOK_MAX_ATTEMPTS.
"""

import ipaddress
import json
import random
import time
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from core.audit import actor_label_for, audit_record
from core.errors import InvalidInput
from decisions import enqueue, signing
from decisions.exceptions import WebhookEndpointNotFound
from decisions.models import Decision, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from decisions.services.shared import Actor, insert_once, raise_validation

USER_AGENT = "decisioning-webhooks/1"
# Answers worth another try: the receiver is busy or failing, not refusing this request.
RETRYABLE_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


def webhook_url_validate(url: str) -> str:
    """https:// only (plus http://127.0.0.1 where DECISIONS_WEBHOOK_ALLOW_LOOPBACK_HTTP is on),
    with no credentials in the URL."""
    url = (url or "").strip()
    parts = urlsplit(url)
    loopback_http = (
        parts.scheme == "http"
        and settings.DECISIONS_WEBHOOK_ALLOW_LOOPBACK_HTTP
        and _is_loopback(parts.hostname or "")
    )
    if not parts.hostname or (parts.scheme != "https" and not loopback_http):
        raise InvalidInput(
            "A webhook URL must be https:// (http://127.0.0.1 only in development and tests).",
            errors={"url": ["Must be an https:// URL."]},
        )
    if parts.username or parts.password:
        raise InvalidInput(
            "A webhook URL carries no credentials; the signature authenticates the request.",
            errors={"url": ["No user or password in the URL."]},
        )
    return url


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _endpoint_snapshot(endpoint: WebhookEndpoint) -> dict[str, Any]:
    # Never the secret, not even encrypted.
    return {
        "name": endpoint.name,
        "url": endpoint.url,
        "description": endpoint.description,
        "is_active": endpoint.is_active,
    }


@transaction.atomic
def webhook_endpoint_create(
    *, name: str, url: str, description: str = "", actor: Actor = None
) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint; answers it and its signing secret, which is never shown again."""
    secret = signing.secret_generate()
    endpoint = WebhookEndpoint(
        name=name.strip(),
        url=webhook_url_validate(url),
        description=description.strip(),
        secret_encrypted=signing.secret_encrypt(secret),
        created_by_label=actor_label_for(actor),
    )
    try:
        endpoint.full_clean()
    except ValidationError as error:
        raise_validation(error)
    insert_once(endpoint, what=f"webhook endpoint {endpoint.name}")
    audit_record(
        actor=actor,
        action="webhook_endpoint.create",
        target_type="webhook_endpoint",
        target_id=endpoint.name,
        after=_endpoint_snapshot(endpoint),
    )
    return endpoint, secret


@transaction.atomic
def webhook_endpoint_update(
    *, endpoint: WebhookEndpoint, url: str, description: str, is_active: bool, actor: Actor = None
) -> WebhookEndpoint:
    """Change where an endpoint points, or switch it off (its deliveries then fail)."""
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    before = _endpoint_snapshot(endpoint)
    endpoint.url = webhook_url_validate(url)
    endpoint.description = description.strip()
    endpoint.is_active = is_active
    endpoint.save(update_fields=["url", "description", "is_active"])
    audit_record(
        actor=actor,
        action="webhook_endpoint.update",
        target_type="webhook_endpoint",
        target_id=endpoint.name,
        before=before,
        after=_endpoint_snapshot(endpoint),
    )
    return endpoint


@transaction.atomic
def webhook_endpoint_secret_rotate(*, endpoint: WebhookEndpoint, actor: Actor = None) -> str:
    """A new signing secret (answered once); the old one stops signing at once."""
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    secret = signing.secret_generate()
    endpoint.secret_encrypted = signing.secret_encrypt(secret)
    endpoint.save(update_fields=["secret_encrypted"])
    audit_record(
        actor=actor,
        action="webhook_endpoint.rotate_secret",
        target_type="webhook_endpoint",
        target_id=endpoint.name,
    )
    return secret


def webhook_endpoint_active(*, name: str) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.filter(name=name, is_active=True).first()
    if endpoint is None:
        raise WebhookEndpointNotFound(
            f"No active webhook endpoint {name!r}.", errors={"endpoint": ["Unknown or inactive."]}
        )
    return endpoint


def _delivery_body(decision: Decision, delivery_id: int) -> dict[str, Any]:
    # The decision, not the event's payload: personal data stays here, and a receiver that
    # needs more reads the decision over the API with its own key (decisions:read).
    version = decision.matched_version
    return {
        "id": delivery_id,
        "type": "decision.action",
        "decision": {
            "id": decision.pk,
            "event_id": decision.event_id,
            "event_type": decision.event_type,
            "outcome": decision.outcome,
            "rule": {"key": version.rule.key, "version": version.number} if version else None,
            "risk": (
                {"score": decision.risk_score, "label": decision.risk_label}
                if decision.risk_score is not None
                else None
            ),
            "decided_at": decision.decided_at.isoformat(),
        },
    }


def webhook_delivery_create(
    *, decision: Decision, action_index: int, endpoint_name: str
) -> WebhookDelivery:
    """Inside the decision's transaction: the delivery row, sent once the decision commits."""
    endpoint = webhook_endpoint_active(name=endpoint_name)
    delivery = WebhookDelivery.objects.create(
        decision=decision, action_index=action_index, endpoint=endpoint, body={}
    )
    delivery.body = _delivery_body(decision, delivery.pk)
    delivery.save(update_fields=["body"])
    enqueue.webhook_deliver_enqueue(delivery_id=delivery.pk)
    return delivery


def webhook_retry_delay(attempt: int) -> float:
    """Seconds before the next try after the `attempt`-th failed: exponential, with jitter."""
    base = settings.DECISIONS_WEBHOOK_BACKOFF_SECONDS * 2 ** (attempt - 1)
    return round(base * random.uniform(0.8, 1.2), 3)


def _claim(delivery_id: int) -> bool:
    """Take the row for one try: only a pending or retrying row, or one whose sender's lease
    ran out (a worker that died mid-send), is taken, and by one caller only."""
    now = timezone.now()
    lease = timedelta(seconds=settings.DECISIONS_WEBHOOK_TIMEOUT_SECONDS + 60)
    return bool(
        WebhookDelivery.objects.filter(pk=delivery_id)
        .filter(
            Q(status__in=[WebhookDelivery.Status.PENDING, WebhookDelivery.Status.RETRYING])
            | Q(status=WebhookDelivery.Status.SENDING, lease_until__lt=now)
        )
        .update(
            status=WebhookDelivery.Status.SENDING,
            lease_until=now + lease,
            attempts=F("attempts") + 1,
        )
    )


def _send(delivery: WebhookDelivery) -> tuple[int | None, str]:
    """One POST: (HTTP status or None, error text or "")."""
    endpoint = delivery.endpoint
    if not endpoint.is_active:
        return None, "The endpoint was switched off."
    body = json.dumps(delivery.body, sort_keys=True, separators=(",", ":")).encode()
    secret = signing.secret_decrypt(endpoint.secret_encrypted)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Webhook-Id": str(delivery.pk),
        "Webhook-Attempt": str(delivery.attempts),
        signing.SIGNATURE_HEADER: signing.signature_header(
            secret=secret, body=body, timestamp=int(time.time())
        ),
    }
    try:
        response = requests.post(
            endpoint.url,
            data=body,
            headers=headers,
            timeout=settings.DECISIONS_WEBHOOK_TIMEOUT_SECONDS,
            allow_redirects=False,
        )
    except requests.RequestException as error:
        return None, f"{type(error).__name__}: {error}"[:500]
    response.close()
    if 200 <= response.status_code < 300:
        return response.status_code, ""
    return response.status_code, f"HTTP {response.status_code}"


def webhook_delivery_attempt(*, delivery_id: int) -> float | None:
    """Try to send a delivery once; answers the seconds to wait before the next try, or None
    when there is nothing more to do (delivered, failed for good, or another sender holds it)."""
    if not _claim(delivery_id):
        return None
    delivery = WebhookDelivery.objects.select_related("endpoint").get(pk=delivery_id)
    started_at = timezone.now()
    clock = time.perf_counter()
    status_code, error = _send(delivery)
    duration_ms = round((time.perf_counter() - clock) * 1000, 1)
    delivered = not error
    permanent = not delivered and (
        not delivery.endpoint.is_active
        or (status_code is not None and status_code not in RETRYABLE_STATUSES)
    )
    exhausted = delivery.attempts >= settings.DECISIONS_WEBHOOK_MAX_ATTEMPTS
    if delivered:
        status = WebhookDelivery.Status.DELIVERED
    elif permanent or exhausted:
        status = WebhookDelivery.Status.FAILED
    else:
        status = WebhookDelivery.Status.RETRYING
    with transaction.atomic():
        WebhookAttempt.objects.create(
            delivery=delivery,
            number=delivery.attempts,
            started_at=started_at,
            duration_ms=duration_ms,
            status_code=status_code,
            error=error,
        )
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=status,
            lease_until=None,
            delivered_at=timezone.now() if delivered else None,
        )
    if status == WebhookDelivery.Status.RETRYING:
        return webhook_retry_delay(delivery.attempts)
    return None
