"""Admin pages: every campaigns model lists and opens; ledgers stay read-only."""

import pytest

from campaigns import services
from campaigns.models import Campaign, ConsentEvent, Message, WebhookRequest
from campaigns.tests.factories import campaign_config, campaign_factory, contact_factory

pytestmark = pytest.mark.django_db


def test_it_lists_and_opens_every_campaigns_model(staff_client):
    contact = contact_factory()
    campaign = campaign_factory()
    services.campaign_launch(campaign=campaign)
    services.messages_dispatch()
    message = Message.objects.get()
    services.webhook_store(kind="status", url="http://x/", headers={}, body="a=b")
    pages = [
        "/admin/campaigns/campaign/",
        f"/admin/campaigns/campaign/{campaign.pk}/change/",
        "/admin/campaigns/contact/",
        f"/admin/campaigns/contact/{contact.pk}/change/",
        "/admin/campaigns/consentevent/",
        "/admin/campaigns/message/",
        f"/admin/campaigns/message/{message.pk}/change/",
        "/admin/campaigns/webhookrequest/",
    ]
    for page in pages:
        response = staff_client.get(page)
        assert response.status_code == 200, page
    detail = staff_client.get(f"/admin/campaigns/message/{message.pk}/change/").content
    assert b"Dispatcher" in detail  # the transitions inline


def test_it_creates_a_draft_through_the_service_and_refuses_edits_once_launched(staff_client):
    import json

    response = staff_client.post(
        "/admin/campaigns/campaign/add/",
        {"name": "From admin", "config": json.dumps(campaign_config())},
    )
    assert response.status_code == 302
    campaign = Campaign.objects.get(name="From admin")
    assert campaign.created_by == "staff"
    services.campaign_launch(campaign=campaign)
    page = staff_client.get(f"/admin/campaigns/campaign/{campaign.pk}/change/").content
    assert b'name="config"' not in page


def test_it_keeps_ledgers_read_only(staff_client):
    contact = contact_factory()
    event = ConsentEvent.objects.get(contact=contact)
    assert staff_client.get("/admin/campaigns/consentevent/add/").status_code == 403
    response = staff_client.post(
        f"/admin/campaigns/consentevent/{event.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 403
    assert ConsentEvent.objects.filter(pk=event.pk).exists()
    assert staff_client.get("/admin/campaigns/webhookrequest/add/").status_code == 403
    assert WebhookRequest.objects.count() == 0
