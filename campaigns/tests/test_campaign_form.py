"""The campaign pages that write and look ahead: the draft form (through the same services as
the API and admin), the live segment count and message preview, the exclusion browser, and
the campaign page's charts."""

from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns import page_selectors, services
from campaigns.audience import EXCLUSION_REASONS
from campaigns.models import Campaign, Contact, Message
from campaigns.tests.factories import OPEN_WINDOW, campaign_factory, contact_factory
from core.models import AuditEntry

pytestmark = pytest.mark.django_db

FORM = {
    "name": "Spring offer",
    "segment": "contact.attributes.plan == 'gold'",
    "template": "Hi {{ contact.attributes.first_name }}, spring is here.",
    "topic": "marketing",
    "start_at": "",
    "window_start": "09:00",
    "window_end": "20:00",
    "rate_per_second": "5",
    "cap_messages": "2",
    "cap_hours": "48",
}


def test_it_creates_a_draft_through_the_service_and_sends_the_browser_to_it(role_client):
    manager = role_client("campaign manager")

    response = manager.post("/campaigns/new/", FORM, HTTP_HX_REQUEST="true")

    campaign = Campaign.objects.get()
    assert response.status_code == 200
    assert response["HX-Redirect"] == f"/campaigns/{campaign.pk}/"
    assert (campaign.name, campaign.status) == ("Spring offer", "draft")
    assert campaign.config == {
        "segment": "contact.attributes.plan == 'gold'",
        "template": "Hi {{ contact.attributes.first_name }}, spring is here.",
        "topic": "marketing",
        "start_at": None,
        "send_window": {"start": "09:00", "end": "20:00"},
        "rate_per_second": 5,
        "frequency_cap": {"max_messages": 2, "per_hours": 48},
    }
    assert AuditEntry.objects.filter(action="campaign.create", target_id=str(campaign.pk)).exists()


def test_it_shows_the_services_refusals_on_their_fields_and_stores_nothing(role_client):
    manager = role_client("campaign manager")
    bad = {
        **FORM,
        "segment": "contact.attributes.plan ==",
        "template": "{% for %}",
        "topic": "transactional",
        "window_end": "25:00",
        "rate_per_second": "100000",
    }

    response = manager.post("/campaigns/new/", bad, HTTP_HX_REQUEST="true")

    page = response.content.decode()
    assert response.status_code == 200  # an htmx swap of the form, errors inline
    assert "<html" not in page
    for field in ("segment", "template", "topic", "window_end", "rate_per_second"):
        assert f'data-testid="error-{field}"' in page, field
    assert 'aria-invalid="true"' in page
    assert "CAMPAIGNS_MAX_RATE_PER_SECOND" in page
    assert not Campaign.objects.exists()


def test_a_form_post_without_htmx_gets_the_whole_page_with_a_400(role_client):
    response = role_client("campaign manager").post("/campaigns/new/", {**FORM, "name": ""})
    assert response.status_code == 400
    assert b"<html" in response.content
    assert b'data-testid="error-name"' in response.content
    assert not Campaign.objects.exists()


def test_it_edits_a_draft_and_refuses_a_launched_campaign_inline(role_client):
    manager = role_client("campaign manager")
    contact_factory()
    draft = campaign_factory(name="Draft")
    form = manager.get(f"/campaigns/{draft.pk}/edit/").content.decode()
    assert 'value="Draft"' in form
    assert "your gold offer is waiting" in form

    edited = manager.post(f"/campaigns/{draft.pk}/edit/", {**FORM, "name": "Renamed"})
    assert edited.status_code == 302
    draft.refresh_from_db()
    assert (draft.name, draft.config["rate_per_second"]) == ("Renamed", 5)

    services.campaign_launch(campaign=draft)
    refused = manager.post(
        f"/campaigns/{draft.pk}/edit/", {**FORM, "name": "Too late"}, HTTP_HX_REQUEST="true"
    )
    assert b"Only a draft can be edited" in refused.content
    draft.refresh_from_db()
    assert (draft.name, draft.status) == ("Renamed", "running")


def test_a_start_time_round_trips_through_the_form(role_client, settings):
    settings.TIME_ZONE = "Europe/Paris"
    manager = role_client("campaign manager")
    manager.post("/campaigns/new/", {**FORM, "start_at": "2031-05-02T09:30"})
    campaign = Campaign.objects.get()
    assert campaign.config["start_at"] == "2031-05-02T09:30:00+02:00"
    form = manager.get(f"/campaigns/{campaign.pk}/edit/").content.decode()
    assert 'value="2031-05-02T09:30"' in form
    assert "Time zone Europe/Paris" in form


def test_only_who_may_write_campaigns_gets_the_form(role_client):
    analyst = role_client("analyst")  # campaigns:read, not campaigns:write
    assert analyst.get("/campaigns/new/").status_code == 403
    assert analyst.post("/campaigns/new/", FORM).status_code == 403
    assert analyst.post("/campaigns/live/segment-count/", FORM).status_code == 403
    assert b'data-testid="new-campaign"' not in analyst.get("/campaigns/").content
    assert not Campaign.objects.exists()


def test_the_live_count_says_how_many_contacts_the_segment_matches(role_client):
    manager = role_client("campaign manager")
    contact_factory(attributes={"plan": "gold", "first_name": "Ada"})
    contact_factory(attributes={"plan": "gold", "first_name": "Bo"})
    contact_factory(attributes={"plan": "silver", "first_name": "Cy"})
    contact_factory(attributes={})
    url = "/campaigns/live/segment-count/"

    gold = manager.post(url, {"segment": "contact.attributes.plan == 'gold'"}).content.decode()
    everyone = manager.post(url, {"segment": ""}).content.decode()
    broken = manager.post(url, {"segment": "contact.attributes.plan =="}).content.decode()

    assert '<span data-testid="segment-matched">2</span>' in gold
    assert "of 4 contacts match" in gold
    assert "1 lack what it reads" in gold
    assert '<span data-testid="segment-matched">4</span>' in everyone
    assert 'data-testid="segment-error"' in broken
    assert "segment-matched" not in broken


def test_the_live_count_extrapolates_past_its_reading_limit():
    for plan in ("gold", "silver", "gold", "silver"):
        contact_factory(attributes={"plan": plan})
    count = page_selectors.segment_count(segment="contact.attributes.plan == 'gold'", limit=2)
    assert (count.seen, count.matched, count.total, count.estimated) == (2, 1, 4, 2)


def test_the_live_preview_gives_encoding_and_segments(role_client):
    manager = role_client("campaign manager")
    url = "/campaigns/live/message-preview/"

    plain = manager.post(url, {"template": "Hi {{ contact.attributes.first_name }}!"})
    accented = manager.post(url, {"template": "Grüße 🌷 " + "x" * 70})
    long_gsm = manager.post(url, {"template": "a" * 161})

    plain_page = plain.content.decode()
    assert "Hi [first_name]!" in plain_page  # an example contact: no personal data shown
    assert '<span data-testid="message-encoding">GSM-7</span>' in plain_page
    assert '<span data-testid="message-segments">1</span>' in plain_page
    assert '<span data-testid="message-encoding">UCS-2</span>' in accented.content.decode()
    assert '<span data-testid="message-segments">2</span>' in accented.content.decode()
    assert '<span data-testid="message-segments">2</span>' in long_gsm.content.decode()
    assert not AuditEntry.objects.filter(action="pii.read").exists()


def test_the_live_preview_shows_template_errors_inline(role_client):
    manager = role_client("campaign manager")
    url = "/campaigns/live/message-preview/"

    syntax = manager.post(url, {"template": "Hi {{ contact."}).content.decode()
    too_long = manager.post(url, {"template": "x" * 1601}).content.decode()
    too_costly = manager.post(url, {"template": "{% for i in range(300) %}hello {% endfor %}"})

    assert 'data-testid="template-error"' in syntax
    assert "At most 1600 characters" in too_long
    assert 'data-testid="template-error"' in too_costly.content.decode()
    assert "rendered-body" not in too_costly.content.decode()


def test_a_reader_of_personal_data_previews_for_the_first_matching_contact(staff_client):
    contact_factory(attributes={"plan": "silver", "first_name": "Sil"})
    gold = contact_factory(attributes={"plan": "gold", "first_name": "Goldie"})
    response = staff_client.post(
        "/campaigns/live/message-preview/",
        {
            "segment": "contact.attributes.plan == 'gold'",
            "template": "Hi {{ contact.attributes.first_name }}",
        },
    )
    assert b"Hi Goldie" in response.content
    assert AuditEntry.objects.get(action="pii.read").after == {"ids": [str(gold.pk)]}


def _exclusion_audience() -> Campaign:
    for _ in range(3):
        contact_factory()
    for _ in range(30):
        contact_factory(consent={})  # never opted in
    contact_factory(consent={"marketing": False})
    return campaign_factory()


def test_the_exclusion_browser_lists_who_is_skipped_and_why_a_page_at_a_time(role_client):
    campaign = _exclusion_audience()
    manager = role_client("campaign manager")
    url = f"/campaigns/{campaign.pk}/exclusions/"

    first = manager.get(url, HTTP_HX_REQUEST="true").content.decode()
    opted_out = manager.get(url, {"reason": "opted_out"}).content.decode()
    second = manager.get(url, {"reason": "no_consent", "page": "2"}).content.decode()
    unknown = manager.get(url, {"reason": "<script>"}).content.decode()

    assert "31 contacts skipped" in first
    assert first.count('data-testid="exclusion-row"') == 25
    assert '<option value="no_consent" >no_consent (30)</option>' in first
    assert '<option value="opted_out" >opted_out (1)</option>' in first
    assert "Page 1 of 2" in first
    assert "+1415555" not in first  # numbers masked without pii:read
    assert "1 contact skipped for opted_out" in opted_out
    assert opted_out.count('data-testid="exclusion-row"') == 1
    assert second.count('data-testid="exclusion-row"') == 5
    assert "reason=no_consent&amp;page=1" in second
    assert "31 contacts skipped" in unknown  # an unknown reason is no filter
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"
    assert not Message.objects.exists()


def test_the_exclusion_browser_reads_a_fixed_number_of_queries(
    role_client, django_assert_num_queries
):
    campaign = _exclusion_audience()
    manager = role_client("campaign manager")
    url = f"/campaigns/{campaign.pk}/exclusions/"
    manager.get(url)
    # session, user, permissions (2), campaign, contact count, the window's contacts, their
    # consent, the page's contacts
    with django_assert_num_queries(9):
        manager.get(url, {"page": "2"})


def test_every_window_of_the_exclusion_browser_decides_as_the_whole_audience_and_launch_do():
    # A window reads only its own contacts' consent and recent sends: its last contact must
    # keep its opt-in, its opt-out and its cap.
    for consent in ({"marketing": True}, {}, {"marketing": False}, {"marketing": True}):
        contact_factory(consent=consent)
    capped = contact_factory()
    contact_factory(attributes={"plan": "gold"})  # no first name: template_error
    contact_factory(consent={"marketing": False})
    capped_last = contact_factory()
    for contact in (capped, capped_last):
        Message.objects.create(
            contact=contact,
            topic="marketing",
            status="delivered",
            body="earlier",
            send_after=timezone.now(),
            claimed_at=timezone.now() - timedelta(hours=1),
            provider_sid=f"SM-earlier-{contact.pk}",
        )
    campaign = campaign_factory(frequency_cap={"max_messages": 1, "per_hours": 24})
    whole = page_selectors.campaign_exclusions(campaign=campaign)
    ids = sorted(Contact.objects.values_list("id", flat=True))

    windows = [page_selectors.campaign_exclusions(campaign=campaign, limit=n) for n in range(9)]
    services.campaign_launch(campaign=campaign)

    assert [why for _id, why in whole.rows] == [
        "no_consent", "opted_out", "frequency_cap", "template_error", "opted_out", "frequency_cap"
    ]  # fmt: skip
    for size, window in enumerate(windows):
        expected = [(pk, why) for pk, why in whole.rows if pk in ids[:size]]
        assert (window.seen, window.rows) == (size, expected)
        assert window.excluded == {
            reason: sum(why == reason for _id, why in expected) for reason in EXCLUSION_REASONS
        }
    launched = Message.objects.filter(campaign=campaign).exclude(cancel_reason="")
    assert sorted(launched.values_list("contact_id", "cancel_reason")) == whole.rows


def test_the_exclusion_browser_shows_a_broken_config_inline(role_client):
    campaign = campaign_factory()
    Campaign.objects.filter(pk=campaign.pk).update(config={"template": ""})
    response = role_client("campaign manager").get(f"/campaigns/{campaign.pk}/exclusions/")
    assert response.status_code == 200
    assert b'data-testid="error"' in response.content
    assert b"config.template" in response.content


def test_a_big_audience_is_browsed_over_its_first_contacts_and_says_so(role_client, settings):
    campaign = _exclusion_audience()  # 3 eligible, then 30 without consent, then 1 opted out
    settings.CAMPAIGNS_PREVIEW_INLINE_MAX_CONTACTS = 10
    page = role_client("campaign manager").get(f"/campaigns/{campaign.pk}/exclusions/")
    content = page.content.decode()
    assert "Among the first 10 of 34 contacts" in content
    assert "7 contacts skipped" in content
    assert content.count('data-testid="exclusion-row"') == 7
    assert '<option value="opted_out" >opted_out (0)</option>' in content


def _sent_campaign() -> Campaign:
    for _ in range(6):
        contact_factory()
    campaign = campaign_factory(rate_per_second=2, send_window=OPEN_WINDOW)
    services.campaign_launch(campaign=campaign)
    messages = list(Message.objects.filter(campaign=campaign).order_by("id"))
    minute = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=3)
    outcomes = [
        ("delivered", "", minute),
        ("delivered", "", minute),
        ("failed", "21211", minute + timedelta(minutes=2)),
        ("undelivered", "30003", minute + timedelta(minutes=2)),
        ("sent", "", minute + timedelta(minutes=2)),
        ("queued", "", None),
    ]
    for message, (status, code, sent_at) in zip(messages, outcomes, strict=True):
        Message.objects.filter(pk=message.pk).update(
            status=status, error_code=code, queued_at=minute, sent_at=sent_at, segments=2
        )
    return campaign


def test_the_campaign_page_charts_funnel_rate_and_failures_in_a_fixed_number_of_queries(
    role_client, django_assert_num_queries
):
    campaign = _sent_campaign()
    manager = role_client("campaign manager")
    manager.get(f"/campaigns/{campaign.pk}/")  # the session is warm

    # session, user, permissions (2), campaign, launch job, the summary behind the status
    # card and the charts (by status, by minute), messages (count, page): the same whatever
    # the number of messages
    with django_assert_num_queries(10):
        page = manager.get(f"/campaigns/{campaign.pk}/").content.decode()

    funnel = page[page.index('data-testid="campaign-funnel"') :]
    for stage, count in [
        ("queued", 6),
        ("sent", 5),
        ("delivered", 2),
        ("failed", 1),
        ("undelivered", 1),
    ]:
        assert f"<title>{stage}: {count}</title>" in funnel, stage
    rate = page[page.index('data-testid="campaign-send-rate"') :]
    assert "<title>rate limit: 120</title>" in rate  # 2 segments/s
    assert rate.count("<title>") - 1 == 2  # two minutes with sends, one limit line
    assert "segments sent 4" in rate
    assert "segments sent 6" in rate
    failures = page[page.index('data-testid="campaign-failures"') :]
    assert "<title>error 21211: 1</title>" in failures
    assert "<title>error 30003: 1</title>" in failures
    assert page.index('data-testid="campaign-charts"') < page.index('data-testid="message-table"')
    assert page.count("<tr><td>+1 ") == 6  # every message, its number masked


def test_the_query_count_holds_with_more_messages(role_client, django_assert_num_queries):
    campaign = _sent_campaign()
    for _ in range(40):
        contact_factory()
    later = campaign_factory(name="Later", send_window=OPEN_WINDOW)
    services.campaign_launch(campaign=later)
    manager = role_client("campaign manager")
    manager.get(f"/campaigns/{later.pk}/")
    with django_assert_num_queries(10):
        page = manager.get(f"/campaigns/{later.pk}/", {"page": "2"}).content.decode()
    assert "Page 2 of 2" in page
    assert campaign.pk != later.pk


def test_a_page_of_messages_swaps_alone_and_a_reader_without_messages_sees_none(
    role_client, django_assert_num_queries
):
    campaign = _sent_campaign()
    url = f"/campaigns/{campaign.pk}/"
    manager = role_client("campaign manager")
    with django_assert_num_queries(7):  # session, user, permissions (2), campaign, messages (2)
        partial = manager.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in partial
    assert partial.count('<span class="badge') == 6
    assert 'data-testid="campaign-funnel"' not in partial
    analyst = role_client("analyst").get(url).content.decode()  # campaigns:read only
    assert 'data-testid="campaign-funnel"' in analyst
    assert 'data-testid="message-table"' not in analyst
    assert 'data-testid="edit-campaign"' not in analyst


def test_the_charts_partial_answers_alone(role_client):
    campaign = _sent_campaign()
    partial = role_client("campaign manager").get(
        f"/campaigns/{campaign.pk}/charts/", HTTP_HX_REQUEST="true"
    )
    content = partial.content.decode()
    assert "<html" not in content
    assert 'hx-trigger="every 5s"' in content  # running: the charts follow the sends
    assert 'data-testid="campaign-send-rate"' in content


def test_the_previews_reason_counts_open_the_exclusion_browser_at_that_reason(role_client):
    campaign = _exclusion_audience()
    preview = role_client("campaign manager").post(
        f"/campaigns/{campaign.pk}/preview/", HTTP_HX_REQUEST="true"
    )
    content = preview.content.decode()
    assert f'hx-get="/campaigns/{campaign.pk}/exclusions/?reason=no_consent"' in content
    assert 'data-testid="excluded-opted_out"' in content
    assert 'data-testid="excluded-frequency_cap"' not in content  # nobody: nothing to open
