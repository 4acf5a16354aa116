from rest_framework.test import APIClient

from risk.tests.factories import credit_model_register


def test_it_lists_models_with_versions_and_metrics(credit_model, api_client):
    credit_model_register(promote=False)

    response = api_client.get("/api/v1/models/")

    assert response.status_code == 200
    [model] = response.json()["results"]
    assert model["key"] == "credit-default"
    assert model["production_version"] == 1
    assert [(v["version"], v["stage"]) for v in model["versions"]] == [
        (2, "staging"),
        (1, "production"),
    ]
    assert "roc_auc_mean" in model["versions"][0]["metrics"]


def test_metadata_carries_the_feature_schema_a_form_is_built_from(credit_model, api_client):
    response = api_client.get("/api/v1/models/credit-default/metadata/")

    assert response.status_code == 200
    body = response.json()
    [version] = body["versions"]
    age = next(f for f in version["feature_schema"] if f["name"] == "age")
    assert age == {
        "name": "age",
        "type": "integer",
        "description": "Age in years",
        "required": True,
        "minimum": 18,
        "maximum": 120,
        "example": 33,
        "reason": "Age",  # the adverse-action text of a driver on this feature
    }
    assert version["label_thresholds"] == [["low", 0.3], ["medium", 0.6], ["high", None]]
    assert version["embedding_source_dimensions"] == credit_model.embedding_source_dimensions


def test_metadata_of_an_unknown_model_is_a_problem(db, api_client):
    response = api_client.get("/api/v1/models/churn/metadata/")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["errors"] == {"model_id": ["unknown model 'churn'"]}


def test_the_registry_needs_authentication(db):
    response = APIClient().get("/api/v1/models/")

    assert response.status_code in (401, 403)
    assert response["Content-Type"] == "application/problem+json"
