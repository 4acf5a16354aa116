"""One browser journey per role, over the pages each role works in, in Debian's Chromium.

Every page visited is held to the shared checks (tests/support/page_checks.py): no console
error, failed request or CSP violation, no serious accessibility violation; and screenshotted.
"""

import csv
import re
import uuid

import pytest
from playwright.sync_api import expect

from campaigns import services as campaign_services
from campaigns.services.states import message_transition
from campaigns.tests.factories import contact_factory
from decisions import services as decision_services
from records.models import PredictionRecord
from records.tests.factories import record_create, records_copied
from tests.support.page_checks import assert_fits_phone_width

pytestmark = pytest.mark.django_db(transaction=True)


def _nav(page, name: str):
    return page.get_by_role("navigation", name="Main").get_by_role("link", name=name, exact=True)


def _decisions() -> list:
    rule = decision_services.rule_create(key="large", name="Large", event_type="loan_application")
    version = decision_services.rule_version_create(
        rule=rule, condition="event.amount > 1000", outcome="review", priority=1
    )
    decision_services.rule_version_publish(version=version)
    return [
        decision_services.event_register(
            event_type="loan_application",
            payload={"amount": amount},
            idempotency_key=str(uuid.uuid4()),
            client_scope="journey",
            fingerprint="0" * 64,
        )
        for amount in (5, 2000, 30, 4000, *range(26))
    ]


def test_an_analyst_predicts_filters_records_exports_them_and_replays_a_decision(
    credit_model, role_page
):
    # Given predictions from the API and the form, and decisions of a published rule
    template = record_create(index=0, source="api")
    records_copied(template, count=39, source="api")
    records_copied(record_create(index=1, source="form"), count=9, source="form")
    events = _decisions()
    page, watch = role_page("analyst")

    # The overview: decisions by outcome, the score distribution, the delivery funnel
    expect(page.get_by_test_id("decisions-total")).to_have_text("30")
    expect(page.get_by_test_id("records-total")).to_have_text("50")
    expect(page.locator("#panel-campaigns")).to_contain_text("Campaign delivery")
    expect(_nav(page, "Contacts")).to_have_count(0)
    watch.check("overview")
    assert_fits_phone_width(page)

    # Predict: an out-of-range age is an inline error, then a score with its drivers
    _nav(page, "Predict").click()
    page.fill("#feature-age", "300")
    page.click("[data-testid=predict-submit]")
    expect(page.get_by_test_id("error-age")).to_have_text("must be ≤ 120")
    page.fill("#feature-age", "33")
    page.select_option("#feature-purpose", "car (new)")
    page.click("[data-testid=predict-submit]")
    expect(page.get_by_test_id("prediction")).to_be_visible()
    record = PredictionRecord.objects.latest("id")
    expect(page.get_by_test_id("risk-score")).to_have_text(f"{record.risk_score:.3f}")
    expect(page.locator("[data-testid=drivers] svg rect[x]")).to_have_count(
        sum(1 for driver in record.drivers if driver["contribution"])
    )
    expect(page.locator("[data-testid=similar-list] tbody tr")).to_have_count(5)
    watch.check("predict")
    assert_fits_phone_width(page)

    # Records: filter without reloading, see the histogram, export the filtered set
    _nav(page, "Records").click()
    page.evaluate("window.marker = 'same page'")
    page.select_option("select[name=source]", "form")
    expect(page.get_by_test_id("records-count")).to_have_text("11 records")  # 10 + the form's
    expect(page).to_have_url(re.compile(r"source=form"))
    expect(page.get_by_test_id("records-histogram")).to_be_visible()
    with page.expect_download() as download:
        page.get_by_test_id("export-csv").click()
    rows = list(csv.DictReader(download.value.path().read_text().splitlines()))
    assert {row["source"] for row in rows} == {"form"}
    assert len(rows) == 11
    assert page.evaluate("window.marker") == "same page"
    watch.check("records")
    assert_fits_phone_width(page)

    # A decision: filter, open it, replay it
    _nav(page, "Decisions").click()
    page.get_by_test_id("filter-outcome").select_option("review")
    expect(page.get_by_test_id("count")).to_have_text("2 decisions")
    page.get_by_role("link", name=str(events[1].pk), exact=True).click()
    expect(page.get_by_test_id("outcome")).to_have_text("review")
    page.get_by_test_id("replay").click()
    expect(page.get_by_test_id("replay-result")).to_contain_text("Replay matches")
    watch.check("decision")
    assert_fits_phone_width(page)


def test_a_compliance_officer_finds_a_contact_and_reads_its_consent_timeline(role_page):
    # Given a contact who opted in, then texted STOP for news, and had a message delivered
    contact = contact_factory(phone="+14155550147", consent={"marketing": True, "news": True})
    contact_factory(phone="+14155550999")
    campaign_services.consent_change(
        contact=contact, topic="news", action="opt_out", source="sms_keyword"
    )
    message = campaign_services.transactional_message_send(
        phone=contact.phone, template="Your code is 1234", context={}, reference="journey:1"
    )
    message_transition(message, "sending", "worker")
    message_transition(message, "sent", "worker")
    message_transition(message, "delivered", "callback", ranked=True)
    page, watch = role_page("compliance")

    _nav(page, "Contacts").click()
    page.fill("#contact-search", "0147")
    expect(page.get_by_test_id("contacts-count")).to_have_text("1 contact")
    watch.check("contacts")
    assert_fits_phone_width(page)
    page.get_by_role("link", name="+14155550147").click()

    timeline = page.get_by_test_id("consent-entry")
    expect(timeline).to_have_count(3)
    expect(timeline.first).to_contain_text("Opted out")
    expect(timeline.first).to_contain_text("news")
    page.get_by_test_id("message").locator("summary").click()
    expect(page.get_by_test_id("message")).to_contain_text("Your code is 1234")
    expect(page.get_by_test_id("transitions").locator("li")).to_have_count(4)
    expect(page.locator("#toast")).to_be_empty()  # the page's own notes only
    watch.check("contact")
    assert_fits_phone_width(page)
