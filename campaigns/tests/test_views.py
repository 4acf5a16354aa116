"""The HTMX pages without a browser: query counts, partials, inline errors."""

import pytest

from campaigns import services
from campaigns.models import Campaign, CampaignJob, Message
from campaigns.tests.factories import campaign_factory, contact_factory

pytestmark = pytest.mark.django_db


def test_it_lists_campaigns_in_a_fixed_number_of_queries(staff_client, django_assert_num_queries):
    for index in range(5):
        campaign_factory(name=f"Campaign {index}")
    with django_assert_num_queries(3):  # session, user, campaigns
        response = staff_client.get("/campaigns/")
    assert response.content.count(b'class="badge draft"') == 5


def test_it_renders_only_the_partial_for_htmx(staff_client):
    contact_factory()
    campaign = campaign_factory()
    full = staff_client.get(f"/campaigns/{campaign.pk}/")
    partial = staff_client.get(f"/campaigns/{campaign.pk}/stats/", HTTP_HX_REQUEST="true")
    assert b"<html" in full.content
    assert b"<html" not in partial.content
    assert b'data-testid="campaign-status"' in partial.content


def test_it_shows_a_launch_refusal_inline(staff_client):
    campaign = campaign_factory()
    Campaign.objects.filter(pk=campaign.pk).update(status="completed")
    response = staff_client.post(f"/campaigns/{campaign.pk}/launch/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert b'data-testid="error"' in response.content
    assert b"Only a draft can be launched" in response.content
    assert Campaign.objects.get(pk=campaign.pk).status == "completed"
    assert not Message.objects.exists()


def test_it_shows_a_broken_config_inline_in_the_preview(staff_client):
    campaign = campaign_factory()
    Campaign.objects.filter(pk=campaign.pk).update(config={"template": ""})
    response = staff_client.post(f"/campaigns/{campaign.pk}/preview/", HTTP_HX_REQUEST="true")
    assert b'data-testid="error"' in response.content
    assert b"config.template" in response.content


def test_it_refuses_an_unknown_operation(staff_client):
    campaign = campaign_factory()
    assert staff_client.post(f"/campaigns/{campaign.pk}/explode/").status_code == 404
    assert staff_client.get("/campaigns/999999/").status_code == 404
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"


def test_it_requires_login(client):
    assert client.get("/campaigns/").status_code == 302


def test_a_launch_from_the_page_is_a_job_whose_progress_the_status_card_polls(staff_client):
    contact_factory()
    campaign = campaign_factory()
    stats = f"/campaigns/{campaign.pk}/stats/"
    queued = staff_client.post(f"/campaigns/{campaign.pk}/launch/", HTTP_HX_REQUEST="true")
    assert b'data-testid="launch-job" data-status="queued"' in queued.content
    assert f'hx-get="{stats}" hx-trigger="every 1s"'.encode() in queued.content
    assert b'data-testid="launch"' not in queued.content  # no second launch while queued
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"
    assert not Message.objects.exists()

    job = CampaignJob.objects.get(campaign=campaign, kind="launch")
    assert services.campaign_job_run(job_id=job.pk) == "succeeded"  # what the heavy worker does
    launched = staff_client.get(stats, HTTP_HX_REQUEST="true")
    assert b'data-testid="launch-job"' not in launched.content
    assert b'data-testid="campaign-status-badge">running' in launched.content
    assert Message.objects.filter(campaign=campaign).count() == 1


def test_a_failed_launch_job_is_shown_inline_and_the_campaign_stays_a_draft(staff_client):
    campaign = campaign_factory()
    staff_client.post(f"/campaigns/{campaign.pk}/launch/", HTTP_HX_REQUEST="true")
    Campaign.objects.filter(pk=campaign.pk).update(config={"template": ""})  # broken meanwhile
    job = CampaignJob.objects.get(campaign=campaign, kind="launch")
    assert services.campaign_job_run(job_id=job.pk).startswith("failed")
    card = staff_client.get(f"/campaigns/{campaign.pk}/stats/", HTTP_HX_REQUEST="true")
    assert b'data-testid="error"' in card.content
    assert b"config.template" in card.content
    assert b'data-testid="launch"' in card.content  # may be launched again once fixed
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"


def test_a_preview_over_a_big_audience_runs_as_a_job_the_page_polls(staff_client, settings):
    settings.CAMPAIGNS_PREVIEW_INLINE_MAX_CONTACTS = 1
    for _ in range(2):
        contact_factory()
    campaign = campaign_factory()
    started = staff_client.post(f"/campaigns/{campaign.pk}/preview/", HTTP_HX_REQUEST="true")
    job = CampaignJob.objects.get(campaign=campaign, kind="preview")
    poll = f"/campaigns/{campaign.pk}/preview/{job.pk}/"
    assert f'hx-get="{poll}" hx-trigger="every 1s"'.encode() in started.content
    assert b'data-status="queued"' in staff_client.get(poll, HTTP_HX_REQUEST="true").content

    assert services.campaign_job_run(job_id=job.pk) == "succeeded"
    done = staff_client.get(poll, HTTP_HX_REQUEST="true")
    assert b'data-testid="preview-job"' not in done.content
    assert b'data-testid="preview-matched">2<' in done.content
    other = campaign_factory()
    assert staff_client.get(f"/campaigns/{other.pk}/preview/{job.pk}/").status_code == 404
