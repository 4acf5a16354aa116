"""Server time of the campaign manager's pages with 100,000 contacts and a campaign of 100,000
messages: the campaign page (charts, stats, a page of messages), its charts partial, the
exclusion browser, and the draft form's live segment count and message preview.

Requested in-process through Django's test client (every middleware, session, permission check
and template), signed in as an administrator. Prints a markdown table; target p95 < 200 ms.
Run: `.venv/bin/python bench/campaign_page.py` (BENCH_CAMPAIGN_ROWS to change the size).
"""

import os
import random
import uuid
from datetime import timedelta

from harness import setup_django, summarize, time_calls

ROWS = int(os.environ.get("BENCH_CAMPAIGN_ROWS", "100000"))
REPEAT = int(os.environ.get("BENCH_CAMPAIGN_REPEAT", "30"))
BATCH = 5000
NAME = "Bench campaign"


def ensure_campaign(rng: random.Random) -> int:
    from django.db import connection
    from django.utils import timezone

    from campaigns.models import Campaign, Contact, Message

    missing = ROWS - Contact.objects.count()
    for start in range(0, max(missing, 0), BATCH):
        Contact.objects.bulk_create(
            Contact(
                phone=f"+1628{n:07d}",
                attributes={"plan": rng.choice(["gold", "silver"]), "first_name": "Ada"},
            )
            for n in range(start, start + min(BATCH, missing - start))
        )
    campaign = Campaign.objects.filter(name=NAME).first()
    if campaign is None:
        campaign = Campaign.objects.create(
            name=NAME,
            status=Campaign.Status.RUNNING,
            config={
                "segment": "contact.attributes.plan == 'gold'",
                "template": "Hi {{ contact.attributes.first_name }}",
                "topic": "marketing",
                "rate_per_second": 50,
            },
        )
    missing = ROWS - Message.objects.filter(campaign=campaign).count()
    contacts = list(
        Contact.objects.exclude(messages__campaign=campaign).values_list("pk", flat=True)[
            : max(missing, 0)
        ]
    )
    now = timezone.now()
    statuses = ["delivered"] * 6 + ["sent", "failed", "undelivered", "queued", "pending"]
    for start in range(0, len(contacts), BATCH):
        messages = []
        for contact_id in contacts[start : start + BATCH]:
            status = rng.choice(statuses)
            created = now - timedelta(minutes=90)
            sent = None
            if status not in ("queued", "pending"):
                sent = now - timedelta(seconds=rng.randrange(60 * 60))
            messages.append(
                Message(
                    campaign=campaign,
                    contact_id=contact_id,
                    topic="marketing",
                    status=status,
                    body="Hi Ada",
                    segments=rng.choice([1, 1, 2]),
                    send_after=created,
                    queued_at=created if status != "pending" else None,
                    sent_at=sent,
                    error_code=rng.choice(["30003", "21211", "30005"])
                    if status == "failed"
                    else "",
                )
            )
        Message.objects.bulk_create(messages)
    with connection.cursor() as cursor:
        for table in ("campaigns_contact", "campaigns_message"):
            cursor.execute(f"VACUUM ANALYZE {table}")
    return campaign.pk


def main() -> None:
    setup_django()
    from django.contrib.auth.models import User
    from django.test import Client
    from django.test.utils import setup_test_environment

    setup_test_environment()
    campaign_id = ensure_campaign(random.Random(7))
    admin = User.objects.filter(username="bench-admin").first() or User.objects.create_superuser(
        username="bench-admin", password=uuid.uuid4().hex
    )
    client = Client()
    client.force_login(admin)
    htmx = {"HTTP_HX_REQUEST": "true"}
    live = {"segment": "contact.attributes.plan == 'gold'", "template": "Hi {{ contact.phone }}"}
    pages = [
        ("Campaign page", "get", f"/campaigns/{campaign_id}/", {}, {}),
        (
            "Campaign page, messages page 40",
            "get",
            f"/campaigns/{campaign_id}/",
            {"page": 40},
            htmx,
        ),
        ("Charts partial", "get", f"/campaigns/{campaign_id}/charts/", {}, htmx),
        ("Exclusions (first 5,000)", "get", f"/campaigns/{campaign_id}/exclusions/", {}, htmx),
        ("Live segment count", "post", "/campaigns/live/segment-count/", live, htmx),
        ("Live message preview", "post", "/campaigns/live/message-preview/", live, htmx),
        ("New campaign form", "get", "/campaigns/new/", {}, {}),
    ]
    print(f"{ROWS:,} contacts, a campaign of {ROWS:,} messages; {REPEAT} requests each\n")
    print("| page | median ms | p95 ms |\n| --- | ---: | ---: |")
    for name, method, url, data, headers in pages:
        call = getattr(client, method)
        assert call(url, data, **headers).status_code == 200, url
        summary = summarize(
            time_calls(
                lambda c=call, u=url, d=data, h=headers: c(u, d, **h), repeat=REPEAT, warmup=3
            )
        )
        print(f"| {name} | {summary['median_us'] / 1000:.1f} | {summary['p95_us'] / 1000:.1f} |")


if __name__ == "__main__":
    main()
