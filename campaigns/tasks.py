"""Celery tasks: thin, idempotent wrappers over services, taking primitive ids."""

from typing import Any

from celery import shared_task

import campaigns.providers.twilio  # noqa: F401 -- imported before the pool forks, not per child
from campaigns import services
from campaigns.providers import simulator


@shared_task(name="campaigns.dispatch", ignore_result=True)
def dispatch() -> int:
    """Beat, every second: claim due messages and enqueue their sends."""
    return services.messages_dispatch()


@shared_task(name="campaigns.send_message", ignore_result=True)
def send_message(message_id: int) -> str:
    """Send one message; safe to run twice (the claim lets only one run reach the provider)."""
    return services.message_send(message_id=message_id)


@shared_task(name="campaigns.reconcile", ignore_result=True)
def reconcile() -> dict[str, int]:
    """Beat: ask the provider about messages stuck in sending, unknown or sent."""
    return services.messages_reconcile()


@shared_task(bind=True, name="campaigns.simulator_callback", ignore_result=True, max_retries=5)
def simulator_callback(self: Any, sid: str, status: str) -> None:
    """The simulator's delivery receipt, posted through the real webhook; retried while the
    web server is unreachable."""
    if not simulator.callback_post(sid=sid, status=status):
        raise self.retry(countdown=2**self.request.retries)
