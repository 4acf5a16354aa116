"""Server time of the pages with 100,000 records, decisions, contacts and messages.

Each page is requested in-process through Django's test client (every middleware, the session,
the permission checks, the template), signed in as an administrator, so the figure is the
server's whole share of a page view. Target: p95 under 200 ms. The CSV export of all 100,000
records is timed end to end (rows per second of the streamed body).
"""

import os
import random
import time
import uuid
from datetime import timedelta

from harness import setup_django, summarize, time_calls, write_section
from records_bench import ensure_model

ROWS = int(os.environ.get("BENCH_UI_ROWS", "100000"))
REPEAT = int(os.environ.get("BENCH_UI_REPEAT", "40"))
BATCH = 5000
TARGET_MS = 200
SEED = 11


def ensure_records(rng):
    from records.models import PredictionRecord
    from records.services import record_predict
    from risk.tests.factories import applicant

    missing = ROWS - PredictionRecord.objects.count()
    if missing <= 0:
        return
    template = record_predict(model_id="credit-default", features=applicant(0), source="api")
    sources = ["api", "form", "decision", "backfill"]
    for start in range(0, missing, BATCH):
        PredictionRecord.objects.bulk_create(
            PredictionRecord(
                model_id=template.model_id,
                model_version=template.model_version,
                features=template.features,
                embedding=template.embedding,
                risk_score=rng.random(),
                risk_label=rng.choice(["low", "medium", "high"]),
                drivers=template.drivers,
                base_logit=template.base_logit,
                source=rng.choice(sources),
            )
            for _ in range(min(BATCH, missing - start))
        )


def ensure_decisions(
    rng,
    *,
    event_type: str = "loan_application",
    rows: int = ROWS,
    outcomes=("approve", "approve", "review", "decline"),
    versions=(None,),
):
    """`rows` decided events of `event_type` spread over 30 days (bulk, no engine), each
    matched by one of `versions` (None: the policy's default)."""
    from django.utils import timezone

    from decisions.models import Decision, Event

    missing = rows - Decision.objects.filter(event_type=event_type).count()
    now = timezone.now()
    for start in range(0, max(missing, 0), BATCH):
        size = min(BATCH, missing - start)
        moments = [now - timedelta(minutes=rng.randrange(60 * 24 * 30)) for _ in range(size)]
        events = Event.objects.bulk_create(
            Event(
                type=event_type,
                payload={"amount": rng.randrange(10_000)},
                idempotency_key=str(uuid.uuid4()),
                client_scope="bench",
                fingerprint="0" * 64,
                received_at=moment,
            )
            for moment in moments
        )
        Decision.objects.bulk_create(
            Decision(
                event=event,
                event_type=event_type,
                outcome=rng.choice(outcomes),
                matched_version_id=rng.choice(versions),
                policy={"strategy": "first_match", "default_outcome": "approve"},
                engine_us=5.0,
                decided_at=event.received_at,
            )
            for event in events
        )


def ensure_contacts_and_messages(rng):
    from django.utils import timezone

    from campaigns.models import Contact, Message

    missing = ROWS - Contact.objects.count()
    for start in range(0, max(missing, 0), BATCH):
        Contact.objects.bulk_create(
            Contact(phone=f"+1415{n:07d}", attributes={"plan": rng.choice(["gold", "silver"])})
            for n in range(start, start + min(BATCH, missing - start))
        )
    missing = ROWS - Message.objects.count()
    contacts = list(Contact.objects.values_list("pk", flat=True)[: max(missing, 0)])
    now = timezone.now()
    statuses = ["delivered", "delivered", "delivered", "sent", "failed", "undelivered", "queued"]
    for start in range(0, len(contacts), BATCH):
        messages = []
        for contact_id in contacts[start : start + BATCH]:
            status = rng.choice(statuses)
            created = now - timedelta(minutes=rng.randrange(60 * 24 * 30))
            sent = created + timedelta(seconds=5) if status != "queued" else None
            messages.append(
                Message(
                    contact_id=contact_id,
                    topic="marketing",
                    status=status,
                    body="Hello from the benchmark",
                    send_after=created,
                    queued_at=created,
                    sent_at=sent,
                )
            )
        Message.objects.bulk_create(messages)


def vacuum_analyze():
    """What autovacuum does to a table in steady use: statistics for the planner, and the
    visibility map that lets counts and the score histogram read an index alone."""
    from django.db import connection

    tables = [
        "records_predictionrecord",
        "decisions_event",
        "decisions_decision",
        "campaigns_contact",
        "campaigns_message",
    ]
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"VACUUM ANALYZE {table}")


def main():
    setup_django()
    from django.contrib.auth.models import User
    from django.test import Client
    from django.test.utils import setup_test_environment

    from campaigns.models import Contact, Message
    from decisions.models import Decision
    from records.models import PredictionRecord

    setup_test_environment()  # the test client's host, as in the tests
    rng = random.Random(SEED)
    ensure_model()
    started = time.perf_counter()
    for load in (ensure_records, ensure_decisions, ensure_contacts_and_messages):
        print(f"{load.__name__}…", flush=True)
        load(rng)
    loaded = time.perf_counter() - started
    vacuum_analyze()
    admin = User.objects.filter(username="bench-admin").first() or User.objects.create_superuser(
        username="bench-admin", password=uuid.uuid4().hex
    )
    client = Client()
    client.force_login(admin)
    record = PredictionRecord.objects.order_by("-id").first()
    contact = Contact.objects.filter(messages__isnull=False).order_by("-id").first()
    decision = Decision.objects.order_by("-id").first()
    htmx = {"HTTP_HX_REQUEST": "true"}
    pages = [
        ("Overview frame", "/", {}),
        ("Overview: decisions panel, 30 days", "/decisions/panel/?range=30d", {}),
        ("Overview: predictions panel, 30 days", "/records/panel/?range=30d", {}),
        ("Overview: campaigns panel, 30 days", "/overview/campaigns/?range=30d", {}),
        ("Records, page 2", "/records/?page=2", {}),
        ("Records filtered (htmx)", "/records/?source=api&min_score=0.5&page=3", htmx),
        ("A record", f"/records/{record.pk}/", {}),
        ("Similar records", f"/records/{record.pk}/similar/", {}),
        ("Predict form", "/predict/", {}),
        ("Decisions, page 3", "/decisions/?page=3", {}),
        ("A decision", f"/decisions/{decision.pk}/", {}),
        ("Contacts by attribute", "/contacts/?q=plan%3Dgold&page=2", {}),
        ("A contact", f"/contacts/{contact.pk}/", {}),
    ]
    rows, raw = [], {"rows": ROWS, "load_seconds": loaded, "pages": {}}
    for name, url, headers in pages:
        assert client.get(url, **headers).status_code == 200, url

        def view(url=url, headers=headers):
            return client.get(url, **headers)

        summary = summarize(time_calls(view, repeat=REPEAT, warmup=3))
        raw["pages"][name] = {"url": url, **summary}
        p95 = summary["p95_us"] / 1000
        rows.append(
            f"| {name} | `{url}` | {summary['median_us'] / 1000:.1f} | {p95:.1f} | "
            f"{'yes' if p95 < TARGET_MS else '**no**'} |"
        )
    started = time.perf_counter()
    response = client.get("/records/export.csv")
    lines = sum(chunk.count(b"\n") for chunk in response.streaming_content) - 1
    export = time.perf_counter() - started
    raw["export"] = {"rows": lines, "seconds": export}
    counts = (
        f"{PredictionRecord.objects.count():,} records, {Decision.objects.count():,} decisions, "
        f"{Contact.objects.count():,} contacts, {Message.objects.count():,} messages"
    )
    markdown = "\n".join(
        [
            f"With {counts} (vacuumed and analysed, as autovacuum keeps them); each page",
            f"requested {REPEAT} times in-process (Django's test client: every middleware, the",
            "session, permission checks, template), signed in as an admin.",
            "",
            "| page | URL | median ms | p95 ms | p95 < 200 ms |",
            "| --- | --- | ---: | ---: | --- |",
            *rows,
            "",
            f"CSV export of all {lines:,} records (streamed): {export:.1f} s, "
            f"{lines / export:,.0f} rows/s.",
        ]
    )
    write_section("ui_pages", title="Pages with 100,000 rows", markdown=markdown, raw=raw)


if __name__ == "__main__":
    main()
