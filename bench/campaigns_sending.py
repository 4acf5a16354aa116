"""Campaigns, measured in one run:

1. launch: materialising 100,000 messages (segment in CEL, consent, cap, template, quiet
   hours, COPY) against the floor of a bare COPY of the same rows;
2. sending to the fake Twilio server with 2 real Celery workers sharing one Redis schedule: the
   sustained rate against a configured limit (target: within 1 %, no second 10 % above), and the
   rate with no effective limit (target: >= 1,000 msg/s);
3. webhook processing latency (status callbacks through the full Django stack, signature
   verified, stored raw, deduplicated, applied): median and p99 (target: p99 < 20 ms).
"""

import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.harness import full_size, setup_django, summarize, write_section

CONTACTS = 100_000
SEND_RATE = int(os.environ.get("BENCH_SEND_RATE", "50"))
SEND_SECONDS = int(os.environ.get("BENCH_SEND_SECONDS", "20"))
# "Unthrottled": a limit far above what 2 workers can send, so the workers set the pace.
UNTHROTTLED_RATE = 100_000
UNTHROTTLED = int(os.environ.get("BENCH_UNTHROTTLED_MESSAGES", "50000" if full_size() else "10000"))
WEBHOOK_CALLS = 1000
AREA_CODES = [201, 202, 203, 205, 206, 207, 208, 209, 210, 212, 213, 214, 215, 216, 217]
ROOT = Path(__file__).resolve().parent.parent


def reset_tables() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE campaigns_messagetransition, campaigns_message, campaigns_campaign, "
            "campaigns_subscription, campaigns_consentevent, campaigns_webhookrequest, "
            "campaigns_contact, campaigns_simulatedmessage RESTART IDENTITY CASCADE"
        )


def load_contacts(count: int) -> None:
    """Bulk-load contacts opted in to `marketing` (set-up, not measured)."""
    from django.db import connection
    from django.utils import timezone

    from campaigns.phones import candidate_zones

    now = timezone.now()
    raw = connection.connection
    zones = {code: ",".join(candidate_zones(f"+1{code}5550000")) for code in AREA_CODES}
    with raw.cursor() as cursor:
        with cursor.copy(
            "COPY campaigns_contact (phone, attributes, region, number_time_zones, time_zone, "
            "opted_out, number_invalid, created_at, updated_at) FROM STDIN"
        ) as copy:
            for index in range(count):
                code = AREA_CODES[index // 10000]
                phone = f"+1{code}555{index % 10000:04d}"
                # 500 distinct first names, as in a real population (names repeat).
                name = f"Name{(index * 7919) % 500}"
                attributes = f'{{"first_name": "{name}", "plan": "gold", "orders": {index % 40}}}'
                copy.write_row(
                    (phone, attributes, "US", zones[code], "UTC", False, False, now, now)
                )
        cursor.execute(
            "INSERT INTO campaigns_subscription (contact_id, topic, status, source, updated_at) "
            "SELECT id, 'marketing', 'opted_in', 'import', now() FROM campaigns_contact"
        )
    # Fresh statistics, as a long-lived table would have: the planner needs them.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE campaigns_contact")
        cursor.execute("ANALYZE campaigns_subscription")


def bench_launch() -> dict:
    from django.db import connection, transaction
    from django.utils import timezone

    from campaigns import services

    reset_tables()
    load_contacts(CONTACTS)
    campaign = services.campaign_create(
        name="Bench launch",
        config={
            "segment": "contact.attributes.plan == 'gold' && contact.attributes.orders >= 0",
            "template": "Hi {{ contact.attributes.first_name }}, your gold offer is waiting.",
            "send_window": {"start": "00:00", "end": "23:59"},
            "rate_per_second": 100,
        },
    )
    started = time.perf_counter()
    services.campaign_launch(campaign=campaign)
    launch_seconds = time.perf_counter() - started
    materialised = campaign.messages.count()

    # The floor: the same rows COPYed with nothing evaluated, committed (so the foreign-key
    # checks PostgreSQL runs at commit count too), then removed again.
    now = timezone.now()
    contact_ids = list(campaign.messages.values_list("contact_id", flat=True))
    other = services.campaign_create(name="Floor", config=campaign.config)
    started = time.perf_counter()
    with (
        transaction.atomic(),
        connection.connection.cursor() as cursor,
        cursor.copy(
            "COPY campaigns_message (campaign_id, contact_id, topic, status, body, segments, "
            "send_after, attempts, provider, error_code, error_message, cancel_reason, "
            "created_at, updated_at) FROM STDIN"
        ) as copy,
    ):
        for contact_id in contact_ids:
            copy.write_row(
                (
                    other.pk,
                    contact_id,
                    "marketing",
                    "pending",
                    "Hi, your offer.",
                    1,
                    now,
                    0,
                    "",
                    "",
                    "",
                    "",
                    now,
                    now,
                )
            )
    floor_seconds = time.perf_counter() - started
    other.messages.all().delete()
    return {
        "contacts": CONTACTS,
        "messages": materialised,
        "launch_seconds": launch_seconds,
        "copy_floor_seconds": floor_seconds,
        "load_average": os.getloadavg()[0],
    }


def bench_webhooks() -> dict:
    from django.conf import settings
    from django.test import Client
    from twilio.request_validator import RequestValidator

    from campaigns.models import Message

    settings.ALLOWED_HOSTS = ["*"]
    settings.SMS_PROVIDER = "twilio"
    settings.TWILIO_AUTH_TOKEN = "bench-token"
    settings.PUBLIC_BASE_URL = "http://testserver"
    ids = list(Message.objects.order_by("id").values_list("id", flat=True)[:WEBHOOK_CALLS])
    Message.objects.filter(id__in=ids).update(status="sending")
    validator = RequestValidator("bench-token")
    client = Client()
    samples = []
    for number, message_id in enumerate(ids):
        status = "sent" if number % 2 == 0 else "delivered"
        url = f"http://testserver/webhooks/twilio/status/?message={message_id}"
        params = {
            "MessageSid": f"SM{message_id:032d}",
            "MessageStatus": status,
            "To": "+12015550000",
            "AccountSid": "AC" + "0" * 32,
        }
        headers = {
            "HTTP_X_TWILIO_SIGNATURE": validator.compute_signature(url, params),
            "HTTP_I_TWILIO_IDEMPOTENCY_TOKEN": f"bench-{message_id}-{status}",
        }
        started = time.perf_counter()
        response = client.post(f"/webhooks/twilio/status/?message={message_id}", params, **headers)
        samples.append(time.perf_counter() - started)
        assert response.status_code == 200, response.content
    return summarize(samples[50:])  # the first calls warm caches and connections


def bench_sending() -> dict:
    """2 worker processes and beat, one Redis schedule, the fake Twilio server: the steady rate
    of a throttled campaign against its limit, then how fast an unthrottled one goes."""
    from tests.support.celery_worker import database_url
    from tests.support.fake_twilio import FakeTwilio
    from tests.support.redis_server import RedisServer

    # The launch benchmark left a running campaign of 100,000 messages: workers started now
    # would send those too, into this run's provider counts.
    reset_tables()
    workdir = Path(tempfile.mkdtemp(prefix="bench-campaigns-"))
    redis_server = RedisServer(workdir)
    redis_url = redis_server.start()
    fake = FakeTwilio(auth_token="bench-token", callback_delay=0.05)
    fake.send_callbacks = False  # measure sending, not receipts
    fake.start()
    workers: list[subprocess.Popen] = []
    try:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": database_url(),
            "DATA_DIR": str(workdir),
            "RATE_LIMIT_STORAGE_URL": redis_url,
            "CELERY_BROKER_URL": redis_url,
            "SMS_PROVIDER": "twilio",
            "TWILIO_ACCOUNT_SID": fake.account_sid,
            "TWILIO_AUTH_TOKEN": "bench-token",
            "TWILIO_API_BASE_URL": fake.url,
            "TWILIO_FROM_NUMBER": "+15005550006",
            "LOG_LEVEL": "WARNING",
            "CONN_MAX_AGE": "600",
            "CAMPAIGNS_MAX_RATE_PER_SECOND": str(UNTHROTTLED_RATE),
        }
        celery = [sys.executable, "-m", "celery", "-A", "config"]
        quiet = ["--loglevel", "WARNING"]
        commands = [
            [
                *celery,
                "worker",
                "--pool",
                "threads",
                "--concurrency",
                "8",
                "--hostname",
                f"bench{number}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                *quiet,
            ]
            for number in range(2)
        ]
        # Beat dispatches, as in production; this process only watches, so the fake server's
        # clock (which stamps each arrival) is not held up by dispatch work here.
        commands.append([*celery, "beat", "--schedule", str(workdir / "beat-schedule"), *quiet])
        for command in commands:
            workers.append(
                subprocess.Popen(
                    command,
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
        time.sleep(8)  # workers and beat up (their first tasks would otherwise wait anyway)
        throttled = _campaign_run(fake, redis_url, rate=SEND_RATE, total=SEND_RATE * SEND_SECONDS)
        unthrottled = _campaign_run(fake, redis_url, rate=UNTHROTTLED_RATE, total=UNTHROTTLED)
    finally:
        for worker in workers:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.pid, signal.SIGKILL)
        fake.stop()
        redis_server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return {"throttled": throttled, "unthrottled": unthrottled}


def _campaign_run(fake, redis_url: str, *, rate: int, total: int) -> dict:
    """One campaign of `total` messages at `rate`, sent by the running workers; its figures by
    the provider's own clock."""
    from django.conf import settings

    from campaigns import services
    from campaigns.ratelimit import rate_limit_reset

    reset_tables()
    load_contacts(total)
    with fake.lock:
        fake.create_calls.clear()
        fake.messages.clear()
    settings.RATE_LIMIT_STORAGE_URL = redis_url
    settings.CAMPAIGNS_MAX_RATE_PER_SECOND = UNTHROTTLED_RATE
    campaign = services.campaign_create(
        name=f"Bench at {rate}/s",
        config={
            "segment": "true",
            "template": "Hi {{ contact.attributes.first_name }}, your offer is waiting.",
            "send_window": {"start": "00:00", "end": "23:59"},
            "rate_per_second": rate,
        },
    )
    rate_limit_reset(key=f"campaign:{campaign.pk}")
    services.campaign_launch(campaign=campaign)
    deadline = time.monotonic() + total / min(rate, 100) * 3 + 60
    while time.monotonic() < deadline and len(fake.create_calls) < total:
        time.sleep(0.2)
    # When each request reached the provider, by the provider's own clock.
    sent_times = sorted(message.created_at for message in fake.accepted())
    creates = len(fake.create_calls)
    distinct = len({call["To"] for call in fake.create_calls})
    moments = [t.timestamp() for t in sent_times]
    wall = moments[-1] - moments[0]
    # The steady state: drop the first and last tenth (at most 5 s each: start-up and tail).
    # The sustained rate is the slope of messages sent against time (least squares), which,
    # unlike a count divided by a span, does not depend on where the span cuts a burst.
    trim = min(5.0, wall / 10)
    steady = [t for t in moments if moments[0] + trim <= t < moments[-1] - trim]
    steady_rate = statistics.linear_regression(steady, range(len(steady))).slope
    return {
        "limit_per_second": rate,
        "messages": total,
        "provider_calls": creates,
        "distinct_recipients": distinct,
        "steady_rate": steady_rate,
        "error_percent": (steady_rate - rate) / rate * 100,
        "busiest_second": busiest_second(moments),
        "wall_seconds": wall,
        "load_average": os.getloadavg()[0],
    }


def busiest_second(moments: list[float]) -> int:
    """The most messages that reached the provider within any one-second span."""
    busiest, first = 0, 0
    for last, moment in enumerate(moments):
        while moment - moments[first] >= 1.0:
            first += 1
        busiest = max(busiest, last - first + 1)
    return busiest


def main() -> None:
    setup_django()
    import logging

    for name in ("django_structlog", "django.request", "campaigns"):
        logging.getLogger(name).setLevel(logging.WARNING)
    launch = bench_launch()
    webhooks = bench_webhooks()
    sending = bench_sending()
    send, fast = sending["throttled"], sending["unthrottled"]
    rows = [
        (
            f"launch: {launch['messages']:,} messages from {launch['contacts']:,} contacts",
            f"**{launch['launch_seconds']:.2f} s** "
            f"({launch['launch_seconds'] / launch['copy_floor_seconds']:.2f}x the COPY)",
            f"< 5 s; bare COPY of the same rows, committed: {launch['copy_floor_seconds']:.2f} s; "
            f"load average then {launch['load_average']:.1f} on 2 cores",
        ),
        (
            "throttled send rate, 2 workers (8 threads each), one Redis schedule",
            f"**{send['steady_rate']:.2f} msg/s** ({send['error_percent']:+.2f} %)",
            f"limit {send['limit_per_second']} msg/s, within 1 %",
        ),
        (
            "busiest one-second span at the provider",
            f"{send['busiest_second']} messages "
            f"({(send['busiest_second'] / send['limit_per_second'] - 1) * 100:+.0f} %)",
            f"limit {send['limit_per_second']}; no second more than 10 % above",
        ),
        (
            "unthrottled send rate, same 2 workers",
            f"**{fast['steady_rate']:.0f} msg/s** ({fast['messages']:,} messages in "
            f"{fast['wall_seconds']:.1f} s)",
            f">= 1,000 msg/s; load average then {fast['load_average']:.1f}",
        ),
        (
            "provider calls / messages / distinct recipients",
            f"{send['provider_calls']} / {send['messages']} / {send['distinct_recipients']}; "
            f"{fast['provider_calls']} / {fast['messages']} / {fast['distinct_recipients']}",
            "all equal (never twice)",
        ),
        (
            "webhook processing, median",
            f"**{webhooks['median_us'] / 1000:.2f} ms**",
            "",
        ),
        ("webhook processing, p99", f"**{webhooks['p99_us'] / 1000:.2f} ms**", "< 20 ms"),
    ]
    table = "\n".join(f"| {a} | {b} | {c} |" for a, b, c in rows)
    markdown = f"""
| measurement | result | target / baseline |
| --- | --- | --- |
{table}

The launch evaluates the CEL segment, consent, frequency cap, the Jinja template, SMS segments
and quiet hours for every contact and streams each outcome into one COPY as it is decided, so
the database inserts on the other core while Python evaluates; the floor is the database's own
cost for the same rows at that moment (heap, four indexes, foreign-key checks, commit), so the
difference ({launch["launch_seconds"] - launch["copy_floor_seconds"]:.2f} s) is what reading
the contacts and the evaluation add. On this shared machine the floor alone varies several-fold
with the other work running; the 5 s target holds only when the disk is quiet.

Sending: the dispatcher (beat, every second) queues up to 3 s of each campaign's rate and
enqueues one task per batch (half a second of the rate, at most 50 messages). A batch is claimed
in one transaction, reserves its slots on the campaign's GCRA schedule in Redis in one call,
sends each message in its slot through the real `twilio` client, and records the receipts in one
statement every 0.2 s. The send rate is the least-squares slope of messages sent against time
in the steady state (the first and last tenth of the run, at most 5 s each, dropped), by the
provider's arrival times: {send["messages"]} messages over {send["wall_seconds"]:.1f} s at the
limit, {fast["messages"]:,} unthrottled (a limit of {UNTHROTTLED_RATE:,}/s, so the workers set
the pace). The fake provider is a Python HTTP server in this process, on the same 2 cores as the
workers, PostgreSQL and Redis: its own cost is part of the unthrottled figure. Webhook latency:
{webhooks["n"]} signed status callbacks through Django's test client (middleware, signature
check, raw store, dedup, rank-ordered transition). Measured at {datetime.now(UTC):%H:%M} UTC.
"""
    write_section(
        "campaigns_sending",
        title="Campaigns: launch, send rate, webhooks",
        markdown=markdown,
        raw={"launch": launch, "sending": sending, "webhooks": webhooks},
    )


if __name__ == "__main__":
    main()
