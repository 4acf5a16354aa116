import re
from dataclasses import replace

from records.models import PredictionRecord
from records.tests.factories import record_create
from risk.services import model_version_register_trained
from risk.tests.factories import applicant, trained_credit_model


def _form(features):
    return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in features.items()}


def test_the_predict_form_is_rendered_from_the_schema(credit_model, staff_client):
    response = staff_client.get("/predict/")

    html = response.content.decode()
    assert response.status_code == 200
    assert html.count('id="feature-') == 20
    assert 'name="age" type="text"' in html
    assert '<option value="radio/television" selected>' in html


def test_a_form_prediction_shows_score_drivers_and_similar_cases(credit_model, staff_client):
    response = staff_client.post(
        "/predict/", {"model": "credit-default", **_form(applicant(0))}, HTTP_HX_REQUEST="true"
    )

    record = PredictionRecord.objects.get()
    html = response.content.decode()
    assert response.status_code == 200
    assert record.source == "form"
    assert f"{record.risk_score:.3f}" in html
    assert html.count('class="bar ') == 20
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
    for index in range(30):
        record_create(index=index)

    # Session, user, count, one page of records (the table partial needs no model list).
    with django_assert_num_queries(4):
        response = staff_client.get("/records/?source=api&page=2", HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    assert response.content.decode().count('data-testid="record-row"') == 5
