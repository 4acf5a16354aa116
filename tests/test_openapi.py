"""The OpenAPI document is complete and valid, and the docs page serves without a CDN."""

import pytest
from django.core.management import call_command


def test_it_generates_a_valid_schema_without_warnings(tmp_path):
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    text = target.read_text()
    assert "openapi: 3.1.0" in text
    assert "ApiKeyAuth" in text


@pytest.mark.django_db
def test_it_serves_schema_and_swagger_ui_from_our_own_static_files(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    docs = client.get("/api/docs/")

    assert schema.status_code == 200
    assert schema.json()["info"]["title"] == "Decisioning platform API"
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content
    assert b"cdn." not in docs.content


@pytest.fixture
def document(client):
    return client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()


@pytest.mark.django_db
def test_every_authenticated_operation_documents_401_403_and_429_as_problems(document):
    problem = {"$ref": "#/components/schemas/Problem"}
    operations = [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if path.startswith("/api/v1/")
    ]
    assert operations
    for method, path, operation in operations:
        for status in ("401", "403", "429"):
            content = operation["responses"][status]["content"]
            assert content["application/problem+json"]["schema"] == problem, (method, path, status)


@pytest.mark.django_db
def test_the_document_states_what_the_server_enforces(document):
    events = document["paths"]["/api/v1/events/"]["post"]
    (key,) = [p for p in events["parameters"] if p["name"] == "Idempotency-Key"]
    decisions = document["paths"]["/api/v1/decisions/"]["get"]
    page = {p["name"]: p["schema"] for p in decisions["parameters"]}

    assert (key["in"], key["required"]) == ("header", True)
    assert (key["schema"]["minLength"], key["schema"]["maxLength"]) == (1, 255)
    assert {"400", "409", "422", "413", "415"} <= set(events["responses"])
    assert page["page"]["minimum"] == 1
    assert (page["page_size"]["minimum"], page["page_size"]["maximum"]) == (1, 200)
    assert "404" in decisions["responses"]
    launch = document["paths"]["/api/v1/campaigns/{id}/launch/"]["post"]
    assert "Idempotency-Key" in {p["name"] for p in launch["parameters"]}


@pytest.mark.django_db
def test_the_records_list_documents_its_cursor_and_no_count(document):
    operation = document["paths"]["/api/v1/records/"]["get"]
    parameters = {p["name"]: p["schema"] for p in operation["parameters"]}
    page = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    envelope = document["components"]["schemas"][page.rsplit("/", 1)[1]]

    assert parameters["cursor"] == {"type": "string", "maxLength": 512}
    assert (parameters["page_size"]["minimum"], parameters["page_size"]["maximum"]) == (1, 200)
    assert "page" not in parameters
    assert set(envelope["properties"]) == {"next", "previous", "results"}
    assert "404" not in operation["responses"]
