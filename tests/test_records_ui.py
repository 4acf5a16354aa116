"""The predict form, the records list and a record page, driven in Chromium."""

import re

import pytest
from playwright.sync_api import expect

from records.models import PredictionRecord
from records.tests.factories import record_create

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_analyst_scores_an_applicant_and_sees_drivers_and_similar_cases(
    credit_model, logged_in_page
):
    page = logged_in_page
    record_create(index=0)
    page.goto("/predict/")
    page.fill("#feature-age", "300")
    page.click("[data-testid=predict-submit]")
    expect(page.get_by_test_id("error-age")).to_have_text("must be ≤ 120")
    assert PredictionRecord.objects.count() == 1

    page.fill("#feature-age", "33")
    page.select_option("#feature-purpose", "car (new)")
    page.click("[data-testid=predict-submit]")

    expect(page.get_by_test_id("prediction")).to_be_visible()
    record = PredictionRecord.objects.latest("id")
    expect(page.get_by_test_id("risk-score")).to_have_text(f"{record.risk_score:.3f}")
    expect(page.get_by_test_id("risk-label")).to_have_text(record.risk_label)
    expect(page.locator("[data-testid=drivers] tr")).to_have_count(20)
    expect(page.locator("[data-testid=similar-list] tbody tr")).to_have_count(1)
    assert record.source == "form"
    assert record.features["purpose"] == "car (new)"


def test_the_records_list_filters_and_pages_without_reloading(credit_model, logged_in_page):
    for index in range(30):
        record_create(index=index, source="api" if index % 3 else "form")
    page = logged_in_page
    page.goto("/records/")
    expect(page.get_by_test_id("record-row")).to_have_count(25)
    page.evaluate("window.__marker = 'same page'")

    page.get_by_role("link", name="Next →").click()
    expect(page.get_by_test_id("record-row")).to_have_count(5)
    page.select_option("select[name=source]", "form")

    expect(page.get_by_test_id("record-row")).to_have_count(10)
    expect(page).to_have_url(re.compile(r"source=form"))
    assert page.evaluate("window.__marker") == "same page"


def test_a_record_page_shows_drivers_and_similar_records(credit_model, logged_in_page):
    target = record_create(index=5)
    twin = record_create(index=5, source="form")
    page = logged_in_page

    page.goto(f"/records/{target.pk}/")

    expect(page.locator("[data-testid=drivers] tr")).to_have_count(20)
    expect(page.locator("[data-testid=similar-list] a").first).to_have_text(f"#{twin.pk}")
    page.locator("[data-testid=similar-list] a").first.click()
    expect(page).to_have_url(re.compile(rf"/records/{twin.pk}/$"))


def test_the_dashboard_loads_the_predictions_panel(credit_model, logged_in_page):
    for index in range(3):
        record_create(index=index)
    page = logged_in_page

    page.goto("/")

    expect(page.get_by_test_id("records-total")).to_have_text("3")
    expect(page.locator("#panel-records [data-testid=label-distribution] tr")).to_have_count(
        len(set(PredictionRecord.objects.values_list("risk_label", flat=True)))
    )
