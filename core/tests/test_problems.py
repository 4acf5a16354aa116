import json

import pytest
from rest_framework.test import APIClient

PROBLEM = "application/problem+json"


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    body = json.loads(response.content)
    assert body["status"] == status
    assert {"type", "title", "status", "detail"} <= body.keys()
    return body


@pytest.mark.django_db
def test_it_answers_unknown_api_routes_with_a_problem(api_client):
    body = assert_problem(api_client.get("/api/v1/no-such-thing/"), 404)
    assert body["code"] == "not_found"


@pytest.mark.django_db
def test_it_answers_anonymous_calls_with_401_and_the_scheme(client):
    response = client.get("/api/v1/whoami/")
    body = assert_problem(response, 401)
    assert response["WWW-Authenticate"] == "Api-Key"
    assert body["code"] == "not_authenticated"


@pytest.mark.django_db
def test_it_rejects_a_wrong_key(client):
    response = client.get("/api/v1/whoami/", HTTP_AUTHORIZATION="Api-Key abc.def")
    assert assert_problem(response, 401)["code"] == "authentication_failed"


@pytest.mark.django_db
def test_it_answers_wrong_methods_with_405(api_client):
    body = assert_problem(api_client.delete("/api/v1/whoami/"), 405)
    assert body["code"] == "method_not_allowed"


@pytest.mark.django_db
@pytest.mark.urls("core.tests.urls")
def test_it_answers_bad_json_with_400(api_client):
    response = api_client.generic(
        "POST", "/api/test/echo/", "{not json", content_type="application/json"
    )
    assert assert_problem(response, 400)["code"] == "parse_error"


@pytest.mark.django_db
@pytest.mark.urls("core.tests.urls")
def test_it_refuses_a_body_over_the_limit_with_413(api_client, settings):
    settings.API_MAX_BODY_BYTES = 100
    response = api_client.post("/api/test/echo/", {"text": "x" * 200}, format="json")
    body = assert_problem(response, 413)
    assert "limit is 100 bytes" in body["detail"]


@pytest.mark.django_db
@pytest.mark.urls("core.tests.urls")
def test_it_answers_server_errors_with_a_problem_and_no_trace(api_key):
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {api_key[1]}")
    response = client.get("/api/test/explode/", HTTP_X_REQUEST_ID="trace-me-1")
    body = assert_problem(response, 500)
    assert "boom" not in response.content.decode()
    assert body["request_id"] == "trace-me-1"


@pytest.mark.django_db
@pytest.mark.urls("core.tests.urls")
def test_it_maps_domain_errors_to_their_status_and_fields(api_client):
    body = assert_problem(api_client.get("/api/test/conflict/"), 409)
    assert body["code"] == "conflict"
    assert body["errors"] == {"state": ["Already done."]}


def test_it_renders_html_404_outside_the_api(client, db):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
