"""The default provider: accepts every message and later posts realistic, signed status
callbacks through the real webhook path (its own Celery task, registered through
`campaigns.tasks`), with a configurable share of failed deliveries.

What it "sent" is kept in its own table (the provider's side of the world), so reconciliation
can ask it about a message exactly as it would ask Twilio.
"""

import hashlib
import random
import uuid
from datetime import datetime, timedelta

import requests
from celery import Task, shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from twilio.request_validator import RequestValidator

from campaigns.models import SimulatedMessage
from campaigns.providers import (
    ProviderError,
    ProviderReceipt,
    ProviderStatus,
    simulator_auth_token,
)

FAILURE_CODES = (("undelivered", "30003"), ("undelivered", "30005"), ("failed", "30006"))


class SimulatorProvider:
    name = "simulator"

    def send(self, *, to: str, body: str, status_callback: str) -> ProviderReceipt:
        sid = "SM" + uuid.uuid4().hex
        final_status, error_code = "delivered", ""
        # Decided from the SID, so a replayed callback or a fetch always tells the same story.
        draw = int(hashlib.sha256(sid.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        if draw < settings.SIMULATOR_FAILURE_RATE:
            final_status, error_code = random.choice(FAILURE_CODES)
        SimulatedMessage.objects.create(
            sid=sid,
            to=to,
            body=body,
            status="queued",
            final_status=final_status,
            error_code=error_code,
            status_callback=status_callback,
        )
        delay = settings.CAMPAIGNS_SIMULATOR_CALLBACK_DELAY_SECONDS
        transaction.on_commit(
            lambda: simulator_callback_task.apply_async(args=(sid, "sent"), countdown=delay)
        )
        transaction.on_commit(
            lambda: simulator_callback_task.apply_async(
                args=(sid, final_status), countdown=2 * delay
            )
        )
        return ProviderReceipt(sid=sid, status="queued")

    def fetch(self, *, sid: str) -> ProviderStatus:
        message = SimulatedMessage.objects.filter(sid=sid).first()
        if message is None:
            raise ProviderError(
                f"No simulated message {sid}.", code="20404", transient=False, http_status=404
            )
        return _status(message)

    def find_sent(self, *, to: str, since: datetime, body: str) -> list[ProviderStatus]:
        found = SimulatedMessage.objects.filter(to=to, body=body, created_at__gte=since)
        return [_status(message) for message in found]


def _status(message: SimulatedMessage) -> ProviderStatus:
    # The handset answers whether or not our callbacks got through: after the callback delay
    # the simulated network has settled on the final status.
    settled_after = timedelta(seconds=2 * settings.CAMPAIGNS_SIMULATOR_CALLBACK_DELAY_SECONDS)
    settled = timezone.now() - message.created_at >= settled_after
    status = message.final_status if settled else message.status
    return ProviderStatus(
        sid=message.sid,
        status=status,
        error_code=message.error_code if status == message.final_status else "",
        to=message.to,
        body=message.body,
    )


def callback_post(*, sid: str, status: str) -> bool:
    """Post the simulator's signed status callback to the real webhook; True when answered."""
    simulated = SimulatedMessage.objects.filter(sid=sid).first()
    if simulated is None:
        return True
    SimulatedMessage.objects.filter(pk=simulated.pk).update(status=status)
    params = {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": settings.TWILIO_ACCOUNT_SID or "AC" + "0" * 32,
        "From": settings.TWILIO_FROM_NUMBER or "+15005550006",
        "To": simulated.to,
        "MessageStatus": status,
        "SmsStatus": status,
        "ApiVersion": "2010-04-01",
    }
    if status == simulated.final_status and simulated.error_code:
        params["ErrorCode"] = simulated.error_code
    signature = RequestValidator(simulator_auth_token()).compute_signature(
        simulated.status_callback, params
    )
    headers = {"X-Twilio-Signature": signature, "I-Twilio-Idempotency-Token": f"{sid}-{status}"}
    try:
        response = requests.post(simulated.status_callback, data=params, headers=headers, timeout=5)
    except requests.RequestException:
        return False
    return response.status_code < 500


@shared_task(bind=True, name="campaigns.simulator_callback_post", ignore_result=True, max_retries=5)
def simulator_callback_task(self: Task, sid: str, status: str) -> None:
    """The simulator's delivery receipt, posted through the real webhook; retried while the
    web server is unreachable."""
    if not callback_post(sid=sid, status=status):
        raise self.retry(countdown=2**self.request.retries)
