"""Pages, HTMX actions and admin of campaigns, as each role meets them."""

import pytest

from campaigns import services
from campaigns.models import Campaign, CampaignJob, ConsentEvent, Message
from campaigns.tests.factories import (
    campaign_factory,
    contact_factory,
    contact_stopped_factory,
)
from core.models import AuditEntry

pytestmark = pytest.mark.django_db

PHONE = "+14155552671"
MASKED = "+1 4•••• ••671"
CONTACTS = "/admin/campaigns/contact/"


# --- pages and HTMX actions ---------------------------------------------------------------------


def test_an_analyst_reads_campaigns_but_has_no_operator_buttons_and_cannot_launch(role_client):
    campaign = campaign_factory()
    analyst = role_client("analyst")
    assert analyst.get("/campaigns/").status_code == 200
    detail = analyst.get(f"/campaigns/{campaign.pk}/")
    assert detail.status_code == 200
    assert b'data-testid="launch"' not in detail.content
    assert analyst.post(f"/campaigns/{campaign.pk}/launch/").status_code == 403
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"
    assert not Message.objects.exists()


def test_a_role_without_campaigns_read_gets_403_and_anonymous_the_login_page(role_client, client):
    campaign = campaign_factory()
    editor = role_client("rule editor")
    for url in ("/campaigns/", f"/campaigns/{campaign.pk}/", "/overview/campaigns/"):
        assert editor.get(url).status_code == 403, url
    assert client.get("/campaigns/").status_code == 302
    assert client.post(f"/campaigns/{campaign.pk}/launch/").status_code == 302


def test_a_campaign_manager_launches_from_the_page(role_client):
    contact_factory()
    campaign = campaign_factory()
    manager = role_client("campaign manager")
    assert b'data-testid="launch"' in manager.get(f"/campaigns/{campaign.pk}/").content
    response = manager.post(f"/campaigns/{campaign.pk}/launch/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    job = CampaignJob.objects.get(campaign=campaign, kind="launch")
    assert job.requested_by_label == "campaign_manager"
    assert services.campaign_job_run(job_id=job.pk) == "succeeded"
    assert Campaign.objects.get(pk=campaign.pk).status == "running"


def test_the_preview_masks_samples_for_a_manager_and_audits_compliance(role_client):
    contact = contact_factory(phone=PHONE)
    campaign = campaign_factory()
    url = f"/campaigns/{campaign.pk}/preview/"
    masked = role_client("campaign manager").post(url, HTTP_HX_REQUEST="true").content.decode()
    assert MASKED in masked
    assert PHONE not in masked
    assert "gold offer" not in masked
    assert not AuditEntry.objects.filter(action="pii.read").exists()
    shown = role_client("compliance").post(url, HTTP_HX_REQUEST="true").content.decode()
    assert PHONE in shown
    assert "gold offer" in shown
    entry = AuditEntry.objects.get(action="pii.read")
    assert (entry.actor_label, entry.after) == ("compliance", {"ids": [str(contact.pk)]})


# --- admin ---------------------------------------------------------------------------------------


def test_a_campaign_manager_sees_masked_numbers_in_admin_and_finds_a_contact_by_its_number(
    role_client,
):
    contact = contact_factory(phone=PHONE)
    contact_factory(phone="+14155552672")
    manager = role_client("campaign manager")
    listing = manager.get(CONTACTS).content.decode()
    assert MASKED in listing
    assert PHONE not in listing
    detail = manager.get(f"{CONTACTS}{contact.pk}/change/").content.decode()
    assert MASKED in detail
    assert PHONE not in detail
    found = manager.get(CONTACTS, {"q": "(415) 555-2671"})
    assert [row.pk for row in found.context["cl"].result_list] == [contact.pk]
    # A part of a number finds nothing: numbers cannot be guessed digit by digit.
    assert not manager.get(CONTACTS, {"q": "41555526"}).context["cl"].result_list
    assert not AuditEntry.objects.filter(action="pii.read").exists()


def test_compliance_sees_numbers_in_admin_and_each_read_is_audited(role_client):
    contact = contact_factory(phone=PHONE)
    compliance = role_client("compliance")
    assert PHONE in compliance.get(CONTACTS).content.decode()
    assert PHONE in compliance.get(f"{CONTACTS}{contact.pk}/change/").content.decode()
    partial = compliance.get(CONTACTS, {"q": "41555526"})
    assert [row.pk for row in partial.context["cl"].result_list] == [contact.pk]
    reads = AuditEntry.objects.filter(action="pii.read").values_list("target_type", "after")
    assert list(reads) == [("contact", {"ids": [str(contact.pk)]})] * 3


def test_message_bodies_are_masked_in_admin_without_pii_read(role_client):
    contact_factory(phone=PHONE)
    services.campaign_launch(campaign=campaign_factory())
    message = Message.objects.get()
    page = role_client("campaign manager").get(f"/admin/campaigns/message/{message.pk}/change/")
    assert page.status_code == 200
    text = page.content.decode()
    assert f"[{len(message.body)} characters hidden]" in text
    assert message.body not in text
    assert PHONE not in text


def test_an_analyst_has_no_contact_admin(role_client):
    contact = contact_factory()
    analyst = role_client("analyst")
    assert analyst.get(CONTACTS).status_code == 403
    assert analyst.get(f"{CONTACTS}{contact.pk}/change/").status_code == 403


def test_only_launchers_get_the_campaign_admin_actions(role_client):
    campaign = campaign_factory()
    services.campaign_launch(campaign=campaign)
    data = {"action": "pause", "_selected_action": [campaign.pk]}
    analyst = role_client("analyst")
    assert analyst.get("/admin/campaigns/campaign/").context["action_form"] is None
    analyst.post("/admin/campaigns/campaign/", data)
    assert Campaign.objects.get(pk=campaign.pk).status == "running"
    role_client("campaign manager").post("/admin/campaigns/campaign/", data)
    assert Campaign.objects.get(pk=campaign.pk).status == "paused"


def test_a_campaign_manager_cannot_lift_an_opt_out_in_admin(role_client):
    contact = contact_stopped_factory(phone=PHONE)
    ledger = ConsentEvent.objects.count()
    manager = role_client("campaign manager")
    choices = str(manager.get(CONTACTS).context["action_form"].fields["action"].choices)
    assert "opt_back_in" not in choices
    assert "erase" not in choices
    data = {"action": "opt_back_in", "_selected_action": [contact.pk], "confirm": "yes"}
    manager.post(CONTACTS, {**data, "reason": "asked"})
    contact.refresh_from_db()
    assert contact.opted_out
    assert ConsentEvent.objects.count() == ledger


def test_compliance_lifts_an_opt_out_in_admin_after_giving_a_reason(role_client):
    contact = contact_stopped_factory(phone=PHONE)
    compliance = role_client("compliance")
    data = {"action": "opt_back_in", "_selected_action": [contact.pk]}
    asked = compliance.post(CONTACTS, data)
    assert asked.status_code == 200
    assert b'name="reason"' in asked.content
    assert PHONE in asked.content.decode()
    read = AuditEntry.objects.get(action="pii.read")
    assert read.after == {"ids": [str(contact.pk)]}
    empty = compliance.post(CONTACTS, {**data, "confirm": "yes", "reason": ""})
    assert b"This field is required." in empty.content
    contact.refresh_from_db()
    assert contact.opted_out
    done = compliance.post(CONTACTS, {**data, "confirm": "yes", "reason": "Paper consent."})
    assert done.status_code == 302
    contact.refresh_from_db()
    assert not contact.opted_out
    event = ConsentEvent.objects.filter(contact=contact).first()
    assert (event.action, event.source, event.evidence["reason"]) == (
        "opt_in",
        "admin",
        "Paper consent.",
    )


def test_compliance_erases_a_contact_from_admin_with_a_reason(role_client):
    contact = contact_factory(phone=PHONE)
    compliance = role_client("compliance")
    data = {"action": "erase", "_selected_action": [contact.pk]}
    asked = compliance.post(CONTACTS, data)
    assert b"removed for good" in asked.content
    contact.refresh_from_db()
    assert contact.erased_at is None
    compliance.post(CONTACTS, {**data, "confirm": "yes", "reason": "DPO-1183"})
    contact.refresh_from_db()
    assert contact.erased_at is not None
    assert contact.phone.startswith("erased:")
    assert AuditEntry.objects.get(action="contact.erase").after["reason"] == "DPO-1183"
