"""End to end with a REAL Celery worker, the fake Twilio server and the live webhook endpoint.

The `twilio` provider (the official client) talks to the fake over HTTP; the fake posts signed
callbacks to pytest-django's live server; the test process plays beat (dispatch + reconcile).
"""

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from django.db.models import Count

from campaigns import selectors, services
from campaigns.models import Campaign, Contact, Message, WebhookRequest
from campaigns.ratelimit import rate_limit_reset
from tests.support.celery_worker import CeleryWorker
from tests.support.fake_twilio import FakeTwilio

pytestmark = pytest.mark.django_db(transaction=True)
AUTH_TOKEN = "integration-auth-token"
ACCOUNT_SID = "AC" + "2" * 32
ALWAYS_OPEN = {"start": "00:00", "end": "23:59"}


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN) as fake:
        yield fake


@pytest.fixture
def sms_env(settings, live_server, fake_twilio) -> dict[str, str]:
    """The same SMS settings in the test process and the worker."""
    values = {
        "SMS_PROVIDER": "twilio",
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_API_BASE_URL": fake_twilio.url,
        "TWILIO_FROM_NUMBER": "+15005550006",
        "PUBLIC_BASE_URL": live_server.url,
        "CAMPAIGNS_REQUEUE_AFTER_SECONDS": "5",
        "CAMPAIGNS_SENDING_TIMEOUT_SECONDS": "4",
        "CAMPAIGNS_UNKNOWN_GIVE_UP_SECONDS": "1",
        "CAMPAIGNS_RETRY_BASE_SECONDS": "0.2",
        "CAMPAIGNS_PROVIDER_TIMEOUT_SECONDS": "1",
    }
    for name, value in values.items():
        converted: object = value
        if name.startswith("CAMPAIGNS_"):
            converted = float(value)
        setattr(settings, name, converted)
    return values


def drive(until: Callable[[], bool], *, timeout: float = 40) -> None:
    """Play beat: dispatch and reconcile until `until()` holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        services.messages_dispatch()
        services.messages_reconcile()
        if until():
            return
        time.sleep(0.2)
    counts = dict(Message.objects.values_list("status").annotate(n=Count("id")))
    raise AssertionError(f"Condition not met in {timeout}s; messages: {counts}")


def wait_for_job(client, url: str, *, timeout: float = 60) -> dict:
    """Poll a background job (preview, launch, import) until it ends; it must succeed."""
    deadline = time.monotonic() + timeout
    job = client.get(url).json()
    while job["status"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.2)
        job = client.get(url).json()
    assert job["status"] == "succeeded", job
    return job


def make_contacts(count: int, *, prefix: str = "+1415555", consent: bool = True) -> list[str]:
    phones = []
    for index in range(count):
        phone = f"{prefix}{index:04d}"
        services.contact_create(
            phone=phone,
            attributes={"first_name": f"P{index}", "plan": "gold"},
            time_zone="UTC",
            consent={"marketing": True} if consent else None,
        )
        phones.append(phone)
    return phones


def launch(name: str, *, rate: int = 20, window: dict | None = None, **config) -> Campaign:
    campaign = services.campaign_create(
        name=name,
        config={
            "segment": "contact.attributes.plan == 'gold'",
            "template": "Hi {{ contact.attributes.first_name }}, gold offer inside.",
            "rate_per_second": rate,
            "send_window": window or ALWAYS_OPEN,
            **config,
        },
    )
    rate_limit_reset(key=f"campaign:{campaign.pk}")
    return services.campaign_launch(campaign=campaign)


def all_final(campaign: Campaign) -> Callable[[], bool]:
    """Nothing in flight; a message deferred by quiet hours (due later) counts as settled."""

    def settled() -> bool:
        due_soon = datetime.now(UTC) + timedelta(minutes=1)
        busy = Message.objects.filter(
            campaign=campaign, status__in=["queued", "sending", "unknown", "sent"]
        ) | Message.objects.filter(campaign=campaign, status="pending", send_after__lt=due_soon)
        return not busy.exists()

    return settled


def test_it_sends_each_message_once_when_the_worker_is_killed_mid_campaign(
    celery_worker: CeleryWorker, sms_env, fake_twilio
):
    phones = make_contacts(60)
    celery_worker.start(env=sms_env)
    campaign = launch("Kill test", rate=15)

    drive(lambda: len(fake_twilio.create_calls) >= 15)
    celery_worker.kill()
    sent_before_kill = len(fake_twilio.create_calls)
    assert sent_before_kill < 60
    celery_worker.start()
    drive(all_final(campaign), timeout=60)

    assert sorted(call["To"] for call in fake_twilio.create_calls) == sorted(phones)
    assert {fake_twilio.creates_to(phone) for phone in phones} == {1}
    stats = selectors.campaign_stats(campaign=campaign)
    assert stats["counts"]["delivered"] == 60
    assert stats["total"] == 60
    assert stats["delivery_rate"] == 1.0


def test_it_classifies_errors_and_orders_callbacks(
    celery_worker: CeleryWorker, sms_env, fake_twilio
):
    unsubscribed, invalid, flaky, reordered, hanging = make_contacts(5)
    fake_twilio.refuse(unsubscribed, code=21610)
    fake_twilio.refuse(invalid, code=21211)
    fake_twilio.fail_transiently(flaky, times=2)
    fake_twilio.callbacks_in_order(reordered, ["delivered", "sent", "queued"])
    fake_twilio.hang(hanging, seconds=1.5)
    fake_twilio.no_callbacks(hanging)  # so only reconciliation can learn what happened
    celery_worker.start(env=sms_env)
    campaign = launch("Errors")
    drive(all_final(campaign), timeout=60)

    by_phone = {m.contact.phone: m for m in Message.objects.select_related("contact")}
    assert by_phone[unsubscribed].status == "failed"
    assert by_phone[unsubscribed].error_code == "21610"
    assert Contact.objects.get(phone=unsubscribed).opted_out is True
    assert by_phone[invalid].status == "failed"
    assert Contact.objects.get(phone=invalid).number_invalid is True
    assert by_phone[flaky].status == "delivered"
    assert by_phone[flaky].attempts == 3
    assert fake_twilio.creates_to(flaky) == 3  # two refused with 503, one accepted
    assert by_phone[reordered].status == "delivered"
    transitions = list(by_phone[reordered].transitions.values_list("to_status", flat=True))
    assert "sent" not in transitions[transitions.index("delivered") :]
    assert by_phone[hanging].status == "delivered"
    assert fake_twilio.creates_to(hanging) == 1  # the timeout parked it as unknown, not retried
    assert "unknown" in by_phone[hanging].transitions.values_list("to_status", flat=True)
    for phone in (unsubscribed, invalid):
        assert fake_twilio.creates_to(phone) == 1


def test_it_processes_duplicate_callbacks_once_for_campaign_and_transactional_messages(
    celery_worker: CeleryWorker, sms_env, fake_twilio
):
    make_contacts(3)
    # Transactional messages keep the default quiet hours (08:00-21:00 in the recipient's zone):
    # a recipient where it is midday now, whatever time the suite runs.
    midday_offset = 12 - datetime.now(UTC).hour  # Etc/GMT-N is UTC+N
    services.contact_create(
        phone="+16465550199", attributes={}, time_zone=f"Etc/GMT{-midday_offset:+d}"
    )
    fake_twilio.duplicate_callbacks = True
    celery_worker.start(env=sms_env)
    campaign = launch("Duplicates")
    # The decisions app's call: enqueued on commit, sent by the worker, once per reference.
    for _ in range(2):
        transactional = services.transactional_message_send(
            phone="+1 646 555 0199",
            template="Application {{ id }}: {{ outcome }}.",
            context={"id": "A-1", "outcome": "approved"},
            reference="decision:1",
        )
    drive(all_final(campaign))
    drive(lambda: len(fake_twilio.callback_responses) == 16, timeout=20)

    status_hooks = WebhookRequest.objects.filter(kind="status")
    assert status_hooks.filter(outcome="processed").count() == 8
    assert status_hooks.filter(outcome="duplicate").count() == 8
    transactional.refresh_from_db()
    assert transactional.status == "delivered"
    assert fake_twilio.creates_to("+16465550199") == 1
    for message in Message.objects.all():
        moves = list(message.transitions.values_list("to_status", flat=True))
        assert moves.count("delivered") == 1


def test_it_pauses_within_a_second_and_resumes_without_duplicates(
    celery_worker: CeleryWorker, sms_env, fake_twilio
):
    phones = make_contacts(24)
    celery_worker.start(env=sms_env)
    campaign = launch("Pause", rate=8)
    drive(lambda: len(fake_twilio.create_calls) >= 4)

    services.campaign_pause(campaign=campaign)
    time.sleep(1.0)  # a send claimed before the pause may still complete within this second
    frozen = len(fake_twilio.create_calls)
    for _ in range(12):  # the dispatcher keeps running; nothing new may go out
        services.messages_dispatch()
        time.sleep(0.2)
    assert len(fake_twilio.create_calls) == frozen
    assert frozen < 24

    services.campaign_resume(campaign=campaign)
    drive(all_final(campaign), timeout=60)
    assert {fake_twilio.creates_to(phone) for phone in phones} == {1}
    campaign.refresh_from_db()
    drive(lambda: Campaign.objects.get(pk=campaign.pk).status == "completed", timeout=5)


def test_it_defers_for_quiet_hours_across_zones_and_applies_the_frequency_cap(
    celery_worker: CeleryWorker, sms_env, fake_twilio
):
    now = datetime.now(UTC)
    # A two-hour window around the current UTC time: open in UTC, closed at UTC+12.
    window = {
        "start": (now - timedelta(hours=1)).strftime("%H:00"),
        "end": (now + timedelta(hours=1)).strftime("%H:00"),
    }
    day, night = make_contacts(2, prefix="+1212555")
    Contact.objects.filter(phone=night).update(time_zone="Etc/GMT-12")
    capped = make_contacts(1, prefix="+1646555")[0]
    celery_worker.start(env=sms_env)

    first = launch("First", window=window, frequency_cap={"max_messages": 1, "per_hours": 24})
    drive(lambda: Message.objects.filter(campaign=first, status="delivered").count() == 2)
    second = launch("Second", window=window, frequency_cap={"max_messages": 1, "per_hours": 24})
    drive(all_final(second))

    night_message = Message.objects.get(campaign=first, contact__phone=night)
    assert night_message.status == "pending"
    assert night_message.send_after > now + timedelta(hours=9)
    assert fake_twilio.creates_to(night) == 0
    assert fake_twilio.creates_to(day) == 1
    assert fake_twilio.creates_to(capped) == 1
    capped_second = Message.objects.get(campaign=second, contact__phone=capped)
    assert capped_second.status == "canceled"
    assert capped_second.cancel_reason == "frequency_cap"


def test_it_runs_a_campaign_end_to_end_from_the_api_on_the_simulator(
    celery_worker: CeleryWorker, live_server, settings, api_key
):
    """Preview, launch (a heavy-queue job the worker runs, writing its progress through its own
    connection), every message final, stats adding up: over HTTP, like an integrator."""
    import requests

    settings.CAMPAIGNS_HEAVY_QUEUE = celery_worker.queue  # this worker runs the launch job too
    settings.SMS_PROVIDER = "simulator"
    settings.PUBLIC_BASE_URL = live_server.url
    # A receipt that never arrives (a busy machine) is fetched from the provider instead.
    settings.CAMPAIGNS_RECONCILE_AFTER_SECONDS = 10
    celery_worker.concurrency = 4
    celery_worker.start(
        env={
            "SMS_PROVIDER": "simulator",
            # Enough failures that 60 messages surely have some, and surely not only failures.
            "SIMULATOR_FAILURE_RATE": "0.3",
            "CAMPAIGNS_SIMULATOR_CALLBACK_DELAY_SECONDS": "0.2",
            "PUBLIC_BASE_URL": live_server.url,
        }
    )
    audience = 60
    make_contacts(audience)
    http = requests.Session()
    http.headers["Authorization"] = f"Api-Key {api_key[1]}"
    api = f"{live_server.url}/api/v1/campaigns/"
    created = http.post(
        api,
        json={
            "name": "Simulated",
            "config": {
                "segment": "contact.attributes.plan == 'gold'",
                "template": "Hi {{ contact.attributes.first_name }}!",
                "send_window": ALWAYS_OPEN,
                "rate_per_second": 100,
            },
        },
    )
    assert created.status_code == 201, created.text
    campaign_id = created.json()["id"]
    preview = http.get(f"{api}{campaign_id}/preview/").json()
    assert (preview["matched"], preview["eligible"]) == (audience, audience)
    launched = http.post(f"{api}{campaign_id}/launch/")  # a job, run by the worker
    assert launched.status_code == 202
    assert http.post(f"{api}{campaign_id}/launch/").status_code == 409  # one job at a time
    job = wait_for_job(http, launched.headers["Location"])
    assert (job["progress"], job["result"]["eligible"]) == (1.0, audience)
    campaign = Campaign.objects.get(pk=campaign_id)
    assert campaign.status == "running"
    drive(all_final(campaign), timeout=150)

    stats = http.get(f"{api}{campaign_id}/stats/").json()
    counts = stats["counts"]
    assert stats["total"] == audience
    assert stats["final"] == audience
    assert counts["delivered"] + counts["undelivered"] + counts["failed"] == audience
    assert 0 < counts["delivered"] < audience  # about 30 % fail on purpose
    assert sum(stats["failures_by_error_code"].values()) == audience - counts["delivered"]
    assert stats["delivery_rate"] == round(counts["delivered"] / audience, 4)
    assert WebhookRequest.objects.filter(outcome="rejected").count() == 0
