"""Contacts pages and the overview's campaigns panel through the Django test client, as the
roles that use them (the browser journey lives in tests/test_journeys.py)."""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from campaigns import services
from campaigns.models import CampaignJob, Contact, Message
from campaigns.services.states import message_transition
from campaigns.tests.factories import contact_factory
from core.models import AuditEntry
from core.pii import phone_mask

pytestmark = pytest.mark.django_db

ADA = "+14155550147"


def _message_delivered(phone: str, number: int) -> Message:
    """A transactional message that went queued → sending → sent → delivered."""
    message = services.transactional_message_send(
        phone=phone, template="Hi {{ n }}", context={"n": number}, reference=f"ui:{number}"
    )
    message_transition(message, "sending", "worker")
    message_transition(message, "sent", "worker", fields={"sent_at": timezone.now()})
    message_transition(message, "delivered", "callback", ranked=True)
    return message


def test_compliance_finds_contacts_by_part_of_a_number_and_the_read_is_audited(role_client):
    contact_factory(phone=ADA)
    contact_factory(phone="+14155550999")

    html = role_client("compliance").get(reverse("contacts:list"), {"q": "0147"}).content.decode()

    assert 'data-testid="contacts-count">1 contact<' in html
    assert ADA in html
    assert AuditEntry.objects.filter(action="pii.read", target_type="contact").count() == 1


def test_a_reader_without_pii_read_finds_only_whole_numbers_and_sees_them_masked(role_client):
    contact_factory(phone=ADA, attributes={"plan": "silver"})
    contact_factory(phone="+14155550999", attributes={"plan": "gold"})
    client = role_client("campaign manager")

    partial = client.get(reverse("contacts:list"), {"q": "0147"}).content.decode()
    whole = client.get(reverse("contacts:list"), {"q": "(415) 555-0147"}).content.decode()
    by_attribute = client.get(reverse("contacts:list"), {"q": "plan=silver"}).content.decode()

    assert 'data-testid="contacts-count">0 contacts<' in partial
    assert 'data-testid="contacts-count">1 contact<' in whole
    assert ADA not in whole
    assert phone_mask(ADA) in whole
    assert by_attribute.count('data-testid="contact-row"') == 1
    assert not AuditEntry.objects.filter(action="pii.read").exists()


def test_the_contact_list_has_a_pinned_query_count(role_client, django_assert_num_queries):
    Contact.objects.bulk_create(
        Contact(phone=f"+1415555{n:04d}", attributes={"plan": "gold"}) for n in range(200)
    )
    client = role_client("campaign manager")
    client.get(reverse("contacts:list"))  # the session's first use is not this page's cost

    # Session, user, permissions (user, groups), count, one page.
    with django_assert_num_queries(6):
        response = client.get(reverse("contacts:list"), {"q": "plan=gold", "page": 2})

    assert response.content.decode().count('data-testid="contact-row"') == 25


def test_the_contact_page_shows_subscriptions_the_consent_timeline_and_messages(
    role_client, django_assert_num_queries, settings
):
    settings.SMS_TRANSACTIONAL_DAILY_CAP_PER_NUMBER = 100
    contact = contact_factory(phone=ADA, consent={"marketing": True, "news": True})
    services.consent_change(contact=contact, topic="news", action="opt_out", source="sms_keyword")
    for number in range(12):
        _message_delivered(ADA, number)
    client = role_client("compliance")
    client.get(reverse("contacts:list"))

    # Session, user, permissions (2), contact, subscriptions, ledger, messages with campaigns,
    # their transitions, and the audit entry of the unmasked read (savepoint, the chain's lock,
    # its last hash, the insert, release): 14 whatever the number of messages.
    with django_assert_num_queries(14):
        response = client.get(reverse("contacts:detail", args=[contact.pk]))

    html = response.content.decode()
    assert response.status_code == 200
    assert f'data-testid="contact-phone">{ADA}<' in html
    timeline = html.split('data-testid="consent-timeline"')[1].split("</ol>")[0]
    assert re.findall(r"<strong>(Opted \w+)</strong>", timeline)[0] == "Opted out"  # newest first
    assert timeline.count('data-testid="consent-entry"') == 3
    assert html.count('data-testid="message"') == 12
    assert html.count("→ <strong>delivered</strong>") == 12
    assert "Hi 11" in html


def test_the_contact_page_masks_numbers_and_bodies_without_pii_read(role_client):
    contact = contact_factory(phone=ADA)
    _message_delivered(ADA, 1)

    manager = role_client("campaign manager").get(reverse("contacts:detail", args=[contact.pk]))

    html = manager.content.decode()
    assert ADA not in html
    assert phone_mask(ADA) in html
    assert "Hi 1" not in html
    assert "characters hidden" in html
    assert (
        role_client("analyst").get(reverse("contacts:detail", args=[contact.pk])).status_code == 403
    )


def test_a_csv_import_runs_as_a_job_and_reports_rejected_rows_by_line(role_client):
    client = role_client("campaign manager")
    csv = (
        "phone,plan,consent_marketing\n"
        "+14155550101,gold,yes\n"
        "not-a-number,gold,yes\n"
        "+14155550101,gold,no\n"
    )

    started = client.post(
        reverse("contacts:import"),
        {"file": SimpleUploadedFile("contacts.csv", csv.encode(), content_type="text/csv")},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    job = CampaignJob.objects.get()
    polling = f'hx-get="{reverse("contacts:import-job", args=[job.pk])}" hx-trigger="every 1s"'
    assert polling in started
    assert not Contact.objects.exists()  # nothing until the worker runs it

    services.campaign_job_run(job_id=job.pk)  # what the worker does
    done = client.get(reverse("contacts:import-job", args=[job.pk])).content.decode()

    assert "hx-trigger" not in done  # finished: the page stops polling
    assert re.search(
        r"<strong>1</strong> created, <strong>0</strong> updated, <strong>2</strong> rejected", done
    )
    assert re.findall(r'<th scope="row">(\d+)</th>', done) == ["3", "4"]
    assert Contact.objects.get().attributes == {"plan": "gold"}


def test_an_import_without_a_file_is_an_inline_error_and_starts_nothing(role_client):
    response = role_client("campaign manager").post(reverse("contacts:import"), {})

    assert response.status_code == 400
    assert "Choose a CSV file to import." in response.content.decode()
    assert not CampaignJob.objects.exists()
    assert role_client("compliance").post(reverse("contacts:import"), {}).status_code == 403


def test_the_overview_panel_draws_the_funnel_the_send_rate_and_webhook_rejections(
    staff_client, django_assert_num_queries
):
    for number in range(3):
        _message_delivered(ADA, number)
    services.transactional_message_send(phone=ADA, template="Hi", context={}, reference="ui:q")
    services.webhook_reject(
        kind="status", url="/webhooks/twilio/status/", headers={}, body="", note="bad signature"
    )

    # Session, user, the funnel, sends per bucket, rejections per bucket, campaigns by status.
    with django_assert_num_queries(6):
        response = staff_client.get(reverse("campaigns_overview:panel"), {"range": "1h"})

    html = response.content.decode()
    funnel = html.split('data-testid="delivery-funnel"')[1].split("</figure>")[0]
    rows = dict(re.findall(r'<th scope="row">(\w+)</th><td>(\d+)</td>', funnel))
    assert rows == {
        "created": "4",
        "queued": "4",
        "sent": "3",
        "delivered": "3",
        "undelivered": "0",
        "failed": "0",
    }
    assert 'data-testid="webhooks-rejected">1<' in html
    assert "Messages sent per 5 minutes" in html
