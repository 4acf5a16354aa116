"""The campaign manager's journey in Debian's Chromium: writes a campaign in the app, watches
the live count and message preview, browses who would be skipped, launches, pauses, resumes,
and imports contacts from a CSV.

Every page is held to the shared checks (tests/support/page_checks.py: no console error,
failed request or CSP violation, no serious accessibility violation) and screenshotted; the
form and the campaign page must also fit a phone's 390 px without scrolling sideways. The
heavy worker's jobs (launch, import) run in-process, as tests/test_journeys.py does.
"""

import re
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from campaigns import services
from campaigns.models import Campaign, CampaignJob, Contact, Message
from campaigns.tests.factories import contact_factory
from tests.support.page_checks import assert_fits_phone_width, htmx_settled

pytestmark = pytest.mark.django_db(transaction=True)


def _nav(page: Any, name: str) -> Any:
    return page.get_by_role("navigation", name="Main").get_by_role("link", name=name, exact=True)


def _job_run(kind: str) -> None:
    """What the heavy worker does with the job the page queued."""
    job = CampaignJob.objects.filter(kind=kind).latest("id")
    assert services.campaign_job_run(job_id=job.pk) == "succeeded"


def _some_sent(campaign: Campaign) -> None:
    """The dispatcher and provider at work: a few messages sent, most delivered, one failed."""
    minute = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=2)
    ids = list(
        Message.objects.filter(campaign=campaign, status="pending")
        .order_by("id")
        .values_list("id", flat=True)
    )
    for index, pk in enumerate(ids[:4]):
        status, code = ("failed", "21211") if index == 3 else ("delivered", "")
        Message.objects.filter(pk=pk).update(
            status=status,
            error_code=code,
            queued_at=minute,
            sent_at=minute + timedelta(minutes=index % 2),
        )


def test_a_campaign_manager_writes_previews_launches_pauses_resumes_and_imports(role_page):
    # Given gold and silver customers, some of whom never opted in to marketing
    for name in ("Ada", "Bea", "Cai", "Dev", "Eli"):
        contact_factory(attributes={"plan": "gold", "first_name": name})
    for _ in range(28):
        contact_factory(attributes={"plan": "gold", "first_name": "Nia"}, consent={})
    contact_factory(attributes={"plan": "silver", "first_name": "Sam"})
    page, watch = role_page("campaign manager")
    page.on("dialog", lambda dialog: dialog.accept())

    # A new campaign, written in the app: the count and the message follow the typing
    _nav(page, "Campaigns").click()
    page.get_by_test_id("new-campaign").click()
    expect(page.get_by_test_id("segment-matched")).to_have_text("34")
    page.fill("#id_name", "Gold spring offer")
    page.fill("#id_segment", "contact.attributes.plan ==")
    expect(page.get_by_test_id("segment-error")).to_be_visible()
    page.fill("#id_segment", "contact.attributes.plan == 'gold'")
    expect(page.get_by_test_id("segment-matched")).to_have_text("33")
    page.fill("#id_template", "Hi {{ contact.attributes.first_name }}, spring is here")
    expect(page.get_by_test_id("rendered-body")).to_have_text("Hi [first_name], spring is here")
    expect(page.get_by_test_id("message-encoding")).to_have_text("GSM-7")
    page.fill("#id_template", "Hi {{ contact.attributes.first_name }}, spring is here 🌷")
    expect(page.get_by_test_id("message-encoding")).to_have_text("UCS-2")
    expect(page.get_by_test_id("message-segments")).to_have_text("1")
    page.fill("#id_template", "Hi {{ contact.attributes.first_name")
    expect(page.get_by_test_id("template-error")).to_be_visible()
    page.fill("#id_template", "Hi {{ contact.attributes.first_name }}, spring is here 🌷")
    expect(page.get_by_test_id("rendered-body")).to_contain_text("🌷")
    page.fill("#id_rate_per_second", "100000")
    page.get_by_test_id("save-campaign").click()
    expect(page.get_by_test_id("error-rate_per_second")).to_contain_text("1 to 100")
    assert not Campaign.objects.exists()
    page.fill("#id_rate_per_second", "2")
    page.fill("#id_window_start", "00:00")
    page.fill("#id_window_end", "23:59")
    watch.check("campaign-form")
    assert_fits_phone_width(page)
    page.get_by_test_id("save-campaign").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Gold spring offer")
    campaign = Campaign.objects.get()
    assert (campaign.status, campaign.config["rate_per_second"]) == ("draft", 2)

    # Before the launch: who it reaches, and who would be skipped and why, page by page
    page.get_by_test_id("preview").click()
    expect(page.get_by_test_id("preview-matched")).to_have_text("33")
    expect(page.get_by_test_id("preview-eligible")).to_have_text("5")
    page.get_by_test_id("excluded-no_consent").click()  # a reason's count opens its list
    expect(page.get_by_test_id("exclusions-count")).to_have_text(
        "28 contacts skipped for no_consent"
    )
    htmx_settled(page)
    page.select_option("#exclusion-reason", "")
    expect(page.get_by_test_id("exclusions-count")).to_have_text("28 contacts skipped")
    expect(page.get_by_test_id("exclusion-row")).to_have_count(25)
    htmx_settled(page)
    page.get_by_test_id("exclusions-next").click()
    expect(page.get_by_test_id("exclusions-page")).to_have_text("Page 2 of 2")
    expect(page.get_by_test_id("exclusion-row")).to_have_count(3)
    htmx_settled(page)
    page.select_option("#exclusion-reason", "no_consent")
    expect(page.get_by_test_id("exclusions-count")).to_have_text(
        "28 contacts skipped for no_consent"
    )
    watch.check("campaign-preview")
    assert_fits_phone_width(page)

    # Launch (a background job the status card follows), pause, resume
    page.get_by_test_id("launch").click()
    expect(page.get_by_test_id("launch-job")).to_be_visible()
    _job_run("launch")
    expect(page.get_by_test_id("campaign-status-badge")).to_have_text("running")
    expect(page.get_by_test_id("stat-total")).to_have_text("33")
    page.get_by_test_id("pause").click()
    expect(page.get_by_test_id("campaign-status-badge")).to_have_text("paused")
    page.get_by_test_id("resume").click()
    expect(page.get_by_test_id("campaign-status-badge")).to_have_text("running")
    assert Campaign.objects.get(pk=campaign.pk).status == "running"

    # The campaign page charts what was sent, above the message table
    _some_sent(campaign)
    page.reload()
    expect(page.locator("[data-testid=campaign-funnel] svg rect")).to_have_count(5)
    expect(page.get_by_test_id("campaign-failures")).to_contain_text("error 21211")
    expect(page.locator("[data-testid=campaign-send-rate] svg rect title").last).to_have_text(
        "rate limit: 120"
    )
    expect(page.get_by_test_id("messages-count")).to_have_text("33 messages")
    watch.check("campaign")
    assert_fits_phone_width(page)

    # Contacts from a CSV: the import runs in the background, its report names bad lines
    _nav(page, "Contacts").click()
    page.get_by_role("link", name="Import a CSV").click()
    page.set_input_files(
        "#import-file",
        files=[
            {
                "name": "contacts.csv",
                "mimeType": "text/csv",
                "buffer": b"phone,plan,consent_marketing\n"
                b"+14155550190,gold,yes\n+14155550191,silver,no\nnot-a-number,gold,yes\n",
            }
        ],
    )
    page.get_by_role("button", name=re.compile("Import")).click()
    expect(page.get_by_test_id("job-status")).to_have_text("queued")
    _job_run("import")
    expect(page.get_by_test_id("job-status")).to_have_text("succeeded")
    expect(page.get_by_test_id("import-summary")).to_have_text("2 created, 0 updated, 1 rejected.")
    expect(page.get_by_test_id("import-rejected").locator("tbody th")).to_have_text("4")
    assert Contact.objects.filter(phone="+14155550190").exists()
    watch.check("contact-import")
