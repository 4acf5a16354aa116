"""Who may predict and read records, and how an applicant's features are shown to each."""

import pytest
from django.urls import reverse

from core.access import Scope
from core.models import AuditEntry
from core.pii import MASK
from core.tests.identities import key_client, person
from records.models import PredictionRecord
from records.tests.factories import record_create
from risk.tests.factories import applicant

pytestmark = pytest.mark.django_db
MASKED = MASK * 3


def test_a_predict_key_predicts_unmasked_but_cannot_read_records(credit_model):
    client = key_client(Scope.PREDICT)

    predicted = client.post(
        "/api/v1/predict/",
        {"model_id": "credit-default", "features": applicant(1)},
        format="json",
    )
    record_id = predicted.json()["record_id"]

    assert predicted.status_code == 201
    # The caller sent these features: its own answer shows them.
    assert MASKED not in {driver["value"] for driver in predicted.json()["drivers"]}
    assert client.get("/api/v1/records/").status_code == 403
    assert client.get(f"/api/v1/records/{record_id}/").status_code == 403
    assert client.get(f"/api/v1/records/{record_id}/nearest/").status_code == 403


def test_a_records_read_key_cannot_predict(credit_model):
    response = key_client(Scope.RECORDS_READ).post(
        "/api/v1/predict/",
        {"model_id": "credit-default", "features": applicant(1)},
        format="json",
    )

    assert response.status_code == 403
    assert not PredictionRecord.objects.exists()


def test_a_record_is_masked_without_pii_read_and_not_audited(credit_model):
    record = record_create(index=3)

    body = key_client(Scope.RECORDS_READ).get(f"/api/v1/records/{record.pk}/").json()

    assert set(body["features"].values()) == {MASKED}
    assert set(body["features"]) == set(applicant(3))
    assert {driver["value"] for driver in body["drivers"]} == {MASKED}
    assert body["embedding"] is None
    assert body["risk_score"] == record.risk_score
    assert not AuditEntry.objects.filter(action="pii.read").exists()


def test_a_record_is_unmasked_with_pii_read_and_the_read_is_audited(credit_model):
    record = record_create(index=3)

    body = key_client(Scope.RECORDS_READ, Scope.PII_READ).get(f"/api/v1/records/{record.pk}/")

    assert body.json()["features"] == applicant(3)
    assert len(body.json()["embedding"]) == 384
    entry = AuditEntry.objects.get(action="pii.read")
    assert (entry.target_type, entry.target_id) == ("prediction_record", str(record.pk))


def test_an_analyst_sees_masked_features_on_the_record_page(credit_model, client):
    record = record_create(index=3, credit_amount=987654)
    client.force_login(person("analyst"))

    page = client.get(f"/records/{record.pk}/").content.decode()

    assert "credit_amount" in page
    assert "987654" not in page
    assert MASKED in page


def test_compliance_sees_features_on_the_record_page_and_is_audited(credit_model, client):
    record = record_create(index=3, credit_amount=987654)
    client.force_login(person("compliance"))

    page = client.get(f"/records/{record.pk}/").content.decode()

    assert "987654" in page
    assert AuditEntry.objects.filter(action="pii.read", target_id=str(record.pk)).exists()


def test_record_pages_need_records_read_and_predict_needs_predict(credit_model, client):
    record = record_create(index=3)
    client.force_login(person("campaign manager"))

    assert client.get("/records/").status_code == 403
    assert client.get(f"/records/{record.pk}/").status_code == 403
    assert client.get(f"/records/{record.pk}/similar/").status_code == 403
    assert client.get("/records/panel/").status_code == 403
    assert client.get("/predict/").status_code == 403
    client.force_login(person("compliance"))  # reads records, does not predict
    assert client.get("/records/").status_code == 200
    assert client.get("/predict/").status_code == 403


def test_the_record_admin_masks_features_and_needs_records_read(credit_model, client):
    record = record_create(index=3, credit_amount=987654)
    url = reverse("admin:records_predictionrecord_change", args=[record.pk])
    client.force_login(person("analyst"))

    page = client.get(url)

    assert page.status_code == 200
    assert "987654" not in page.content.decode()
    client.force_login(person("campaign manager"))
    assert client.get(url).status_code == 403
    assert client.get(reverse("admin:records_predictionrecord_changelist")).status_code == 403


def test_the_model_registry_needs_models_read(credit_model, client):
    assert key_client(Scope.MODELS_READ).get("/api/v1/models/").status_code == 200
    assert key_client(Scope.PREDICT, name="predictor").get("/api/v1/models/").status_code == 403
    client.force_login(person("campaign manager"))
    assert client.get(reverse("admin:risk_riskmodel_changelist")).status_code == 403
    client.force_login(person("analyst"))
    assert client.get(reverse("admin:risk_riskmodel_changelist")).status_code == 200
