"""The HTMX pages without a browser: query counts, partials, inline errors."""

import pytest

from campaigns.models import Campaign, Message
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
    response = staff_client.get(f"/campaigns/{campaign.pk}/preview/", HTTP_HX_REQUEST="true")
    assert b'data-testid="error"' in response.content
    assert b"config.template" in response.content


def test_it_refuses_an_unknown_operation(staff_client):
    campaign = campaign_factory()
    assert staff_client.post(f"/campaigns/{campaign.pk}/explode/").status_code == 404
    assert staff_client.get("/campaigns/999999/").status_code == 404
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"


def test_it_requires_login(client):
    assert client.get("/campaigns/").status_code == 302
