"""Guard-rails on what is expensive or dangerous in campaigns, each proven to write or send
nothing when it refuses: countries, the daily cap per number, the rate ceiling, the topic of a
campaign, costly templates, approved SMS templates, heavy jobs one at a time, retention."""

from datetime import timedelta

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework.test import APIClient

from campaigns import services
from campaigns.config import config_parse
from campaigns.exceptions import (
    ApprovalForbidden,
    CampaignJobConflict,
    InvalidCampaignConfig,
    SmsTemplateConflict,
    SmsTemplateNotFound,
    TemplateRenderError,
)
from campaigns.models import (
    Campaign,
    CampaignJob,
    Contact,
    Message,
    SimulatedMessage,
    SmsTemplate,
    WebhookRequest,
)
from campaigns.services import jobs
from campaigns.tests.factories import (
    approved_template,
    campaign_config,
    campaign_factory,
    campaign_manager,
    contact_factory,
    role_member,
)
from core.models import AuditEntry
from core.principals import ApiClient
from core.services import api_key_create

pytestmark = pytest.mark.django_db
JAPAN = "+81312345678"  # valid, and not in the development allow-list

COSTLY_TEMPLATES = {
    "string repetition": '{{ "x" * 100000 }}',
    "a million iterations": "{% for i in range(1000000) %}x{% endfor %}",
    "nested loops": "{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}",
    "doubling with ~": '{% set s = "ab" %}' + "{% set s = s ~ s %}" * 30 + "{{ s|length }}",
    "a macro calling itself twice": (
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}"
    ),
    "a huge width": '{{ "%0999999999d" % 1 }}',
    "a huge power": "{{ 2 ** 100000000 }}",
    "over 1,600 characters": '{{ "abcdefghij" * 170 }}',
    "over ten segments": "{{ 'ж' * 700 }}",  # UCS-2: 11 parts of 67
}


# --- SMS pumping: countries and the daily cap --------------------------------------------------


def test_it_cancels_a_transactional_message_to_a_country_outside_the_allow_list(
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks() as callbacks:
        message = services.transactional_message_send(
            phone=JAPAN, template="Hi", context={}, reference="pumping:1"
        )
    assert (message.status, message.cancel_reason) == ("canceled", "country_not_allowed")
    assert callbacks == []  # nothing enqueued, so nothing sent


def test_it_caps_transactional_messages_per_number_per_day(
    settings, django_capture_on_commit_callbacks
):
    settings.SMS_TRANSACTIONAL_DAILY_CAP_PER_NUMBER = 3
    with django_capture_on_commit_callbacks() as callbacks:
        messages = [
            services.transactional_message_send(
                phone="+14155552671",
                template="Code {{ n }}",
                context={"n": n},
                reference=f"otp:{n}",
            )
            for n in range(5)
        ]
    assert [m.status for m in messages] == ["queued"] * 3 + ["canceled"] * 2
    assert {m.cancel_reason for m in messages[3:]} == {"daily_cap"}
    assert len(callbacks) == 3  # only the first three are ever sent
    other = services.transactional_message_send(
        phone="+14155552672", template="Hi", context={}, reference="otp:other"
    )
    assert other.status == "queued"  # the cap is per number


def test_it_excludes_contacts_outside_the_allow_list_at_launch_and_in_the_preview():
    contact_factory(phone="+14155552671")
    contact_factory(phone=JAPAN)
    campaign = campaign_factory()
    from campaigns import selectors

    assert selectors.campaign_preview(campaign=campaign)["excluded"]["country_not_allowed"] == 1
    services.campaign_launch(campaign=campaign)
    canceled = Message.objects.get(campaign=campaign, contact__phone=JAPAN)
    assert (canceled.status, canceled.cancel_reason) == ("canceled", "country_not_allowed")
    assert Message.objects.filter(campaign=campaign, status="pending").count() == 1


def test_it_refuses_at_send_time_a_country_removed_from_the_allow_list(settings):
    settings.SMS_PROVIDER = "simulator"
    contact_factory(phone="+447400123456")
    campaign = services.campaign_launch(campaign=campaign_factory())
    services.messages_dispatch()
    settings.SMS_ALLOWED_COUNTRIES = ["US"]  # GB was allowed at launch, not any more
    message = Message.objects.get(campaign=campaign)

    assert services.message_send(message_id=message.pk) == "held:country_not_allowed"
    message.refresh_from_db()
    assert (message.status, message.cancel_reason) == ("canceled", "country_not_allowed")
    assert not SimulatedMessage.objects.exists()  # the provider was never called


# --- campaign configuration ------------------------------------------------------------------


def test_it_refuses_a_rate_over_the_ceiling_naming_the_field(settings, api_client):
    settings.CAMPAIGNS_MAX_RATE_PER_SECOND = 50
    response = api_client.post(
        "/api/v1/campaigns/",
        {"name": "Fast", "config": campaign_config(rate_per_second=51)},
        format="json",
    )
    assert response.status_code == 400
    assert "config.rate_per_second" in response.json()["errors"]
    assert not Campaign.objects.exists()
    assert config_parse(campaign_config(rate_per_second=50)).rate_per_second == 50


def test_it_clamps_a_running_campaign_to_a_lowered_ceiling(settings):
    from campaigns.config import config_cached

    raw = campaign_config(rate_per_second=80)
    settings.CAMPAIGNS_MAX_RATE_PER_SECOND = 40
    assert config_cached(raw).rate_per_second == 40


def test_it_refuses_the_transactional_topic_for_a_campaign():
    with pytest.raises(InvalidCampaignConfig) as refused:
        campaign_factory(topic="transactional")
    assert "config.topic" in refused.value.errors
    assert not Campaign.objects.exists()


@pytest.mark.parametrize("source", COSTLY_TEMPLATES.values(), ids=COSTLY_TEMPLATES.keys())
def test_it_refuses_a_costly_campaign_template_at_save(api_client, source):
    response = api_client.post(
        "/api/v1/campaigns/",
        {"name": "Costly", "config": campaign_config(template=source)},
        format="json",
    )
    assert response.status_code == 400
    assert "config.template" in response.json()["errors"]
    assert "too costly" in response.json()["errors"]["config.template"][0]
    assert not Campaign.objects.exists()


def test_it_keeps_ordinary_templates_working():
    source = (
        "{% for item in [1, 2, 3] %}{{ loop.index }}{% endfor %} "
        "{{ contact.attributes.first_name|upper }} {{ '%05d' % 42 }} {{ 'ab' ~ 'cd' }}"
    )
    contact_factory(phone="+14155552671")
    campaign = services.campaign_launch(campaign=campaign_factory(template=source))
    assert Message.objects.get(campaign=campaign).body == "123 ADA 00042 abcd"


def test_it_stops_a_data_dependent_blow_up_at_render_time():
    """A template cheap on the sample contact but costly on real data is still bounded."""
    contact_factory(phone="+14155552671", attributes={"plan": "gold", "times": 100000})
    campaign = campaign_factory(template='{{ "x" * (contact.attributes.times|int) }}')
    services.campaign_launch(campaign=campaign)
    message = Message.objects.get(campaign=campaign)
    assert (message.status, message.cancel_reason, message.body) == (
        "canceled",
        "template_error",
        "",
    )


# --- SMS templates for rule actions ------------------------------------------------------------


def test_it_refuses_a_costly_sms_template_naming_the_body():
    with pytest.raises(TemplateRenderError) as refused:
        services.sms_template_create(key="costly", body='{{ "x" * 100000 }}')
    assert "body" in refused.value.errors
    assert not SmsTemplate.objects.exists()


def test_it_lets_only_a_campaign_manager_approve_and_audits_it():
    template = services.sms_template_create(key="notice", body="We are reviewing.")
    analyst = role_member("analyst", "analyst")
    key = ApiClient(name="ci", scopes=frozenset({"campaigns:launch"}))
    for actor in (analyst, key, None):
        with pytest.raises(ApprovalForbidden):
            services.sms_template_approve(template=template, actor=actor)
    assert not SmsTemplate.objects.get(key="notice").approved

    manager = campaign_manager()
    approved = services.sms_template_approve(template=template, actor=manager)
    assert (approved.approved, approved.approved_by_label) == (True, manager.username)
    entry = AuditEntry.objects.filter(action="sms_template.approve").get()
    assert (entry.actor_label, entry.target_id) == (manager.username, "notice")
    with pytest.raises(SmsTemplateConflict):  # an approved text is frozen
        services.sms_template_update(template=approved, body="Something else.")
    assert SmsTemplate.objects.get(key="notice").body == "We are reviewing."


def test_it_sends_only_approved_templates_by_key(django_capture_on_commit_callbacks):
    services.sms_template_create(key="draft", body="Not yet.")
    with pytest.raises(SmsTemplateNotFound) as refused:
        services.transactional_message_send(
            phone="+14155552671", template_key="draft", context={}, reference="r:1"
        )
    assert "template" in refused.value.errors
    assert not Message.objects.exists()
    approved_template(key="ok", body="Hello {{ phone }}.")
    with django_capture_on_commit_callbacks() as callbacks:
        message = services.transactional_message_send(
            phone="+14155552671", template_key="ok", context={}, reference="r:2"
        )
    assert (message.body, len(callbacks)) == ("Hello +14155552671.", 1)


# --- heavy work as background jobs -------------------------------------------------------------


def test_it_launches_in_a_background_job_one_at_a_time(api_client):
    contact_factory(phone="+14155552671")
    campaign = campaign_factory()
    url = f"/api/v1/campaigns/{campaign.pk}/launch/"

    accepted = api_client.post(url)
    assert (accepted.status_code, accepted.json()["status"]) == (202, "queued")
    assert accepted["Location"].endswith(f"/api/v1/campaign-jobs/{accepted.json()['id']}/")
    second = api_client.post(url)
    assert second.status_code == 409
    assert second.json()["job"] == accepted.json()["id"]
    assert CampaignJob.objects.count() == 1
    assert not Message.objects.exists()  # nothing happens in the request

    assert services.campaign_job_run(job_id=accepted.json()["id"]) == "succeeded"
    assert services.campaign_job_run(job_id=accepted.json()["id"]) == "skipped"  # redelivered
    job = api_client.get(accepted["Location"]).json()
    assert (job["status"], job["progress"], job["result"]["eligible"]) == ("succeeded", 1.0, 1)
    campaign.refresh_from_db()
    assert campaign.status == "running"
    assert api_client.post(url).status_code == 409  # no longer a draft: refused at once
    assert CampaignJob.objects.count() == 1


def test_it_records_a_failed_launch_job_and_writes_nothing():
    contact_factory(phone="+14155552671")
    campaign = campaign_factory()
    job = services.campaign_job_request(kind="launch", campaign=campaign)
    services.campaign_cancel(campaign=campaign)  # canceled while the job waited

    assert services.campaign_job_run(job_id=job.pk) == "failed:campaign_state_conflict"
    job.refresh_from_db()
    assert (job.status, job.error["code"]) == ("failed", "campaign_state_conflict")
    assert not Message.objects.exists()
    # The campaign is free again: another job may be requested (and refused on its merits).
    with pytest.raises(Exception, match="draft"):
        services.campaign_job_request(kind="launch", campaign=campaign)


def test_a_launch_past_its_soft_time_limit_fails_and_rolls_back_what_it_wrote(monkeypatch):
    contact_factory(phone="+14155552671")
    campaign = campaign_factory()
    job = services.campaign_job_request(kind="launch", campaign=campaign)
    launch = jobs.RUNNERS["launch"]

    def launch_then_time_out(job, actor, progress):
        launch(job, actor, progress)
        assert Message.objects.exists()  # the launch wrote its messages...
        raise SoftTimeLimitExceeded()  # ...when Celery's soft limit signalled the worker

    monkeypatch.setitem(jobs.RUNNERS, "launch", launch_then_time_out)
    assert services.campaign_job_run(job_id=job.pk) == "failed:time_limit"
    job.refresh_from_db()
    assert (job.status, job.error["code"]) == ("failed", "time_limit")
    assert not Message.objects.exists()  # ...and none of it stayed
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"


def test_it_previews_a_large_audience_in_a_job_with_samples_masked(settings, api_client):
    settings.CAMPAIGNS_PREVIEW_INLINE_MAX_CONTACTS = 1
    contact_factory(phone="+14155552671")
    contact_factory(phone="+14155552672")
    campaign = campaign_factory()
    _key, raw = api_key_create(name="reader", scopes=["campaigns:read"])
    reader = APIClient()
    reader.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    accepted = api_client.get(f"/api/v1/campaigns/{campaign.pk}/preview/")
    assert accepted.status_code == 202
    services.campaign_job_run(job_id=accepted.json()["id"])
    job = reader.get(accepted["Location"]).json()
    assert job["result"]["eligible"] == 2
    sample = job["result"]["samples"][0]
    assert sample["phone"] != "+14155552671"
    assert "Ada" not in sample["body"]
    unmasked = api_client.get(accepted["Location"]).json()["result"]["samples"][0]  # pii:read
    assert unmasked["phone"] == "+14155552671"
    assert not Message.objects.exists()


def test_it_imports_one_csv_at_a_time_and_frees_an_abandoned_job(settings):
    first = services.campaign_job_request(kind="import", payload="phone\n+14155552671\n")
    with pytest.raises(CampaignJobConflict):
        services.campaign_job_request(kind="import", payload="phone\n+14155552672\n")
    stale = timezone.now() - timedelta(seconds=settings.CAMPAIGNS_HEAVY_SOFT_TIME_LIMIT_SECONDS)
    CampaignJob.objects.filter(pk=first.pk).update(created_at=stale - timedelta(minutes=2))

    second = services.campaign_job_request(kind="import", payload="phone\n+14155552672\n")
    first.refresh_from_db()
    assert (first.status, first.error["code"]) == ("failed", "abandoned")
    assert services.campaign_job_run(job_id=second.pk) == "succeeded"
    assert list(Contact.objects.values_list("phone", flat=True)) == ["+14155552672"]
    second.refresh_from_db()
    assert (second.result["created"], second.payload) == (1, "")  # the CSV is not kept


# --- retention ---------------------------------------------------------------------------------


def test_it_purges_old_webhooks_and_blanks_old_message_bodies_with_an_audited_count(settings):
    settings.RETENTION_PURGE_BATCH_SIZE = 2
    now = timezone.now()
    for index in range(3):
        WebhookRequest.objects.create(kind="status", url="u", headers={}, body=f"old {index}")
    recent = WebhookRequest.objects.create(kind="status", url="u", headers={}, body="recent")
    WebhookRequest.objects.exclude(pk=recent.pk).update(received_at=now - timedelta(days=31))
    contact = contact_factory(phone="+14155552671")
    done, in_flight, _fresh = (
        Message.objects.create(
            contact=contact, topic="t", status=status, body=f"Body {status}", send_after=now
        )
        for status in ("delivered", "queued", "failed")
    )
    Message.objects.filter(pk__in=[done.pk, in_flight.pk]).update(
        created_at=now - timedelta(days=91)
    )

    counts = services.retention_purge()

    assert counts == {"webhooks_deleted": 3, "message_bodies_blanked": 1}
    assert list(WebhookRequest.objects.values_list("body", flat=True)) == ["recent"]
    bodies = dict(Message.objects.values_list("status", "body"))
    assert bodies == {"delivered": "", "queued": "Body queued", "failed": "Body failed"}
    entry = AuditEntry.objects.get(action="retention.purge")
    assert entry.after["webhooks_deleted"] == 3
    assert services.retention_purge() == {"webhooks_deleted": 0, "message_bodies_blanked": 0}


def test_it_lets_only_a_campaign_manager_approve_in_admin(client):
    template = services.sms_template_create(key="notice", body="We are reviewing.")
    changelist = "/admin/campaigns/smstemplate/"
    action = {"action": "approve", "_selected_action": [template.pk]}
    analyst = role_member("analyst", "analyst")  # campaigns:read, not :write or :launch
    manager = campaign_manager()
    User.objects.filter(pk__in=[analyst.pk, manager.pk]).update(is_staff=True)  # admin users
    client.force_login(analyst)
    assert client.get(changelist).status_code == 200
    assert client.get(f"{changelist}add/").status_code == 403
    client.post(changelist, action)
    assert not SmsTemplate.objects.get().approved

    client.force_login(manager)
    client.post(changelist, action)
    assert SmsTemplate.objects.get().approved
    assert client.get(f"{changelist}{template.pk}/change/").status_code == 200  # view only now
    assert AuditEntry.objects.filter(action="sms_template.approve").count() == 1
