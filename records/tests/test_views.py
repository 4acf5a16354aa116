import csv
import re
from dataclasses import replace
from datetime import timedelta

from django.utils import timezone

from records.export import EXPORT_COLUMNS
from records.models import PredictionRecord
from records.tests.factories import record_create, records_copied
from risk.services import model_version_register_trained
from risk.tests.factories import applicant, trained_credit_model


def _form(features):
    return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in features.items()}


def test_the_predict_form_is_rendered_from_the_schema(credit_model, staff_client):
    response = staff_client.get("/predict/")

    html = response.content.decode()
    assert response.status_code == 200
    assert html.count('id="feature-') == 20
    assert re.search(r'name="age" type="number" step="1"\s+min="18" max="120"', html)
    assert 'id="help-age"' in html
    assert '<option value="radio/television" selected>' in html
    assert '<option value="credit-default" selected>' in html  # the model picker


def test_picking_another_model_swaps_in_its_form(credit_model, staff_client):
    # Given a second production model whose schema caps the age at 70
    trained = trained_credit_model()
    schema = [
        {**feature, "maximum": 70} if feature["name"] == "age" else feature
        for feature in trained.schema
    ]
    model_version_register_trained(
        key="credit-strict", trained=replace(trained, schema=schema), promote=True
    )

    # When the analyst picks it in the form's model picker (an htmx GET)
    html = staff_client.get(
        "/predict/", {"model": "credit-strict"}, HTTP_HX_REQUEST="true"
    ).content.decode()

    # Then only the form area comes back, drawn from that model's schema
    assert html.lstrip().startswith('<div id="predict-area"')
    assert '<input type="hidden" name="model" value="credit-strict">' in html
    assert re.search(r'name="age" type="number" step="1"\s+min="18" max="70"', html)
    assert '<option value="credit-strict" selected>' in html


def test_a_form_prediction_shows_score_drivers_and_similar_cases(credit_model, staff_client):
    response = staff_client.post(
        "/predict/", {"model": "credit-default", **_form(applicant(0))}, HTTP_HX_REQUEST="true"
    )

    record = PredictionRecord.objects.get()
    html = response.content.decode()
    assert response.status_code == 200
    assert record.source == "form"
    assert f"{record.risk_score:.3f}" in html
    assert len(re.findall(r'<rect class="tone-\w+" x=', html)) == sum(
        1 for driver in record.drivers if driver["contribution"]
    )
    reasons = sorted(
        (d for d in record.drivers if d["contribution"] > 0), key=lambda d: -d["contribution"]
    )[:3]
    listed = re.findall(r"<li><code>(\w+)</code>", html.split('data-testid="reasons"')[1])
    assert listed[:3] == [reason["feature"] for reason in reasons]
    assert f'data-testid="base-logit">{record.base_logit:.3f}<' in html
    assert f'hx-get="/records/{record.pk}/similar/"' in html
    assert "<h1>" not in html  # a partial, not the page


def test_a_bad_form_shows_inline_errors_and_stores_nothing(credit_model, staff_client):
    response = staff_client.post(
        "/predict/",
        {"model": "credit-default", **_form(applicant(0, age=300, duration_months="x"))},
        HTTP_HX_REQUEST="true",
    )

    html = response.content.decode()
    assert response.status_code == 200  # htmx swaps only 2xx answers
    assert 'data-testid="error-age">must be ≤ 120<' in html
    assert 'data-testid="error-duration_months">must be an integer<' in html
    assert 'value="300"' in html  # the user's input is kept
    assert not PredictionRecord.objects.exists()


def test_a_bad_form_without_htmx_answers_400_with_the_page(credit_model, staff_client):
    response = staff_client.post(
        "/predict/", {"model": "credit-default", **_form(applicant(0, age=5))}
    )

    assert response.status_code == 400
    assert "<h1>Predict</h1>" in response.content.decode()
    assert not PredictionRecord.objects.exists()


def test_the_records_page_filters_and_swaps_only_the_table(credit_model, staff_client):
    api = record_create(index=0, source="api")
    form = record_create(index=1, source="form")

    page = staff_client.get("/records/")
    partial = staff_client.get("/records/?source=form", HTTP_HX_REQUEST="true")

    assert page.status_code == 200
    assert f"#{api.pk}" in page.content.decode()
    html = partial.content.decode()
    assert html.startswith('\n<div id="records-table"') or html.lstrip().startswith(
        '<div id="records-table"'
    )
    assert f"#{form.pk}" in html
    assert f"#{api.pk}<" not in html


def test_the_records_label_filter_offers_the_labels_of_the_models_thresholds(
    credit_model, staff_client
):
    # Given a second model whose versions label applicants approve / refer / decline
    trained = trained_credit_model()
    model_version_register_trained(
        key="fraud",
        trained=replace(trained, thresholds=[["approve", 0.2], ["refer", 0.8], ["decline", None]]),
    )

    # When the records page is shown
    html = staff_client.get("/records/?risk_label=refer").content.decode()

    # Then the label select offers each model's labels in threshold order, and no others
    select = re.search(r'<select name="risk_label">(.*?)</select>', html, re.S)
    assert select is not None
    options = re.findall(r'<option value="([^"]*)"', select.group(1))
    credit_labels = [label for label, _upper in credit_model.label_thresholds]
    assert options == ["", *credit_labels, "approve", "refer", "decline"]
    assert '<option value="refer" selected>' in select.group(1)


def test_the_records_page_explains_bad_filters_inline(credit_model, staff_client):
    response = staff_client.get("/records/?min_score=lots")

    assert response.status_code == 200
    assert "Invalid filters" in response.content.decode()


def test_record_detail_and_similar_partial(credit_model, staff_client):
    target = record_create(index=0)
    twin = record_create(index=0, source="form")

    detail = staff_client.get(f"/records/{target.pk}/")
    similar = staff_client.get(f"/records/{target.pk}/similar/")

    assert detail.status_code == 200
    assert "credit_amount" in detail.content.decode()
    assert f"/records/{twin.pk}/" in similar.content.decode()
    assert f'/records/{target.pk}/"' not in similar.content.decode()
    assert staff_client.get("/records/999999/").status_code == 404


def test_the_dashboard_panel_counts_labels(credit_model, staff_client):
    for index in range(4):
        record_create(index=index)

    response = staff_client.get("/records/panel/")

    html = response.content.decode()
    assert 'data-testid="records-total">4<' in html
    for label in set(PredictionRecord.objects.values_list("risk_label", flat=True)):
        assert f'<span class="badge {label}">{label}</span>' in html


def test_pages_need_a_login(client):
    assert client.get("/predict/").status_code == 302
    assert client.get("/records/").status_code == 302


def test_the_records_page_has_a_pinned_query_count(
    credit_model, staff_client, django_assert_num_queries
):
    records_copied(record_create(index=0), count=300, source="api")

    # Session, user, count, one page of records, the histogram (no model list in the partial).
    with django_assert_num_queries(5):
        response = staff_client.get("/records/?source=api&page=2", HTTP_HX_REQUEST="true")
    # The whole page adds the label and model drop-downs (the models with their versions).
    with django_assert_num_queries(8):
        page = staff_client.get("/records/?source=api")

    assert response.status_code == page.status_code == 200
    assert response.content.decode().count('data-testid="record-row"') == 25


def test_the_records_page_draws_the_score_histogram_of_the_filtered_set(credit_model, staff_client):
    template = record_create(index=0)
    records_copied(template, count=200, source="api")  # scores 0.00 .. 0.99, twice
    records_copied(template, count=50, source="form", risk_score=0.95)

    html = staff_client.get("/records/?source=api", HTTP_HX_REQUEST="true").content.decode()

    table = html.split('data-testid="records-histogram"')[1]
    counts = re.findall(r'<th scope="row">[\d.-]+</th><td>(\d+)</td>', table)
    api_rows = PredictionRecord.objects.filter(source="api").count()
    assert sum(map(int, counts)) == api_rows
    assert counts[-1] == str(20 + (template.risk_score >= 0.9))


def test_the_csv_export_streams_the_filtered_set_safe_for_spreadsheets(credit_model, staff_client):
    template = record_create(index=0)
    records_copied(template, count=3, source="api", external_id=lambda n: f"=HYPERLINK({n})")
    records_copied(template, count=2, source="form", external_id=lambda n: f"ok-{n}")

    response = staff_client.get("/records/export.csv?source=api&ordering=risk_score")

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="records-')
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines[0] == ",".join(EXPORT_COLUMNS)
    rows = list(csv.reader(lines[1:]))
    assert len(rows) == PredictionRecord.objects.filter(source="api").count() == 4
    assert [row[8] for row in rows if row[8]] == [
        "'=HYPERLINK(0)",
        "'=HYPERLINK(1)",
        "'=HYPERLINK(2)",
    ]
    assert {row[6] for row in rows} == {"api"}


def test_the_overview_panel_counts_the_range_and_draws_the_score_distribution(
    credit_model, staff_client
):
    template = record_create(index=0)
    records_copied(template, count=10)
    records_copied(template, count=5, external_id=lambda n: f"old-{n}")
    old = PredictionRecord.objects.filter(external_id__startswith="old-")
    old.update(created_at=timezone.now() - timedelta(days=3))

    day = staff_client.get("/records/panel/?range=24h").content.decode()
    week = staff_client.get("/records/panel/?range=7d").content.decode()

    assert 'data-testid="records-total">11<' in day
    assert 'data-testid="records-total">16<' in week
    assert 'data-testid="score-distribution"' in day
