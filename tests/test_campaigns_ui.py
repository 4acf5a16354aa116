"""The campaign pages in a real browser: list, preview, launch, pause, resume, cancel, admin."""

import re

import pytest
from playwright.sync_api import expect

from campaigns import services
from campaigns.models import Campaign, CampaignJob
from campaigns.tests.factories import campaign_factory, contact_factory

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_previews_launches_pauses_and_cancels_a_campaign(logged_in_page):
    page = logged_in_page
    for _ in range(3):
        contact_factory()
    contact_factory(consent={})
    campaign = campaign_factory(name="Browser campaign")
    page.on("dialog", lambda dialog: dialog.accept())

    page.goto("/campaigns/")
    page.get_by_role("link", name="Browser campaign").click()
    expect(page.get_by_test_id("campaign-status-badge")).to_have_text("draft")

    page.get_by_test_id("preview").click()
    expect(page.get_by_test_id("preview-matched")).to_have_text("4")
    expect(page.get_by_test_id("preview-eligible")).to_have_text("3")
    expect(page.get_by_test_id("preview-samples")).to_contain_text(
        "Hi Ada, your gold offer is waiting."
    )
    expect(page.get_by_test_id("preview-counts")).to_contain_text("Excluded: no_consent")

    page.get_by_test_id("launch").click()  # a background job: the card polls its progress
    expect(page.get_by_test_id("launch-job")).to_have_attribute("data-status", "queued")
    job = CampaignJob.objects.get(campaign=campaign, kind="launch")
    assert services.campaign_job_run(job_id=job.pk) == "succeeded"  # what the heavy worker does
    expect(page.get_by_test_id("campaign-status-badge")).to_have_text("running")
    expect(page.get_by_test_id("launch-job")).to_have_count(0)
    expect(page.get_by_test_id("stat-total")).to_have_text("4")
    page.get_by_test_id("pause").click()
    expect(page.get_by_test_id("campaign-status-badge")).to_have_text("paused")
    page.get_by_test_id("resume").click()
    expect(page.get_by_test_id("campaign-status-badge")).to_have_text("running")
    page.get_by_test_id("cancel").click()
    expect(page.get_by_test_id("campaign-status-badge")).to_have_text("canceled")
    assert Campaign.objects.get(pk=campaign.pk).status == "canceled"


def test_it_polls_live_stats_while_running(logged_in_page):
    page = logged_in_page
    contact_factory()
    campaign = campaign_factory(name="Polling")
    services.campaign_launch(campaign=campaign)
    page.goto(f"/campaigns/{campaign.pk}/")
    expect(page.get_by_test_id("stat-pending")).to_have_text("1")
    services.campaign_cancel(campaign=campaign)  # changes behind the page's back
    expect(page.get_by_test_id("campaign-status-badge")).to_have_text("canceled", timeout=8000)


def test_it_shows_the_dashboard_panel(logged_in_page):
    page = logged_in_page
    campaign_factory(name="Panel draft")
    page.goto("/")
    panel = page.locator("#panel-campaigns")
    expect(panel).to_contain_text("draft 1")
    expect(panel.get_by_role("link", name=re.compile("All campaigns"))).to_be_visible()


def test_it_shows_config_errors_inline_in_admin(logged_in_page):
    page = logged_in_page
    campaign = campaign_factory(name="Admin draft")
    page.goto(f"/admin/campaigns/campaign/{campaign.pk}/change/")
    page.fill(
        "textarea[name=config]",
        '{"segment": "contact.attributes.plan ==", "template": "Hi", "rate_per_second": 0}',
    )
    page.click("input[name=_save]")
    errors = page.locator(".errorlist")
    expect(errors).to_contain_text("config.segment")
    expect(errors).to_contain_text("config.rate_per_second")
    assert Campaign.objects.get(pk=campaign.pk).config["rate_per_second"] == 10
