"""What the API takes is what its OpenAPI document says: each defect schemathesis found, pinned
by a plain request (tests/test_api_contract.py runs schemathesis itself)."""

import pytest

from campaigns.models import Contact
from campaigns.tests.factories import contact_factory
from decisions.models import Event, Rule
from decisions.tests.factories import register_event

pytestmark = pytest.mark.django_db


def test_it_compares_datetimes_with_any_offset_python_accepts(api_client):
    register_event({"amount": 10})

    # PostgreSQL refuses offsets beyond ±15:59; converted to UTC first, the filter just works.
    far_offset = api_client.get(
        "/api/v1/decisions/", {"decided_after": "2000-05-31T06:53:49+21:44"}
    )
    before_year_one = api_client.get(
        "/api/v1/records/", {"created_before": "0001-01-01T00:00:00+05:00"}
    )

    assert far_offset.status_code == 200
    assert far_offset.json()["count"] == 1
    assert before_year_one.status_code == 400
    assert list(before_year_one.json()["errors"]) == ["created_before"]


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ({"page": "0"}, "page"),
        ({"page": "last"}, "page"),
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "201"}, "page_size"),
        ({"page_size": "ten"}, "page_size"),
        ({"opted_out": "maybe"}, "opted_out"),
        ({"opted_out": ""}, "opted_out"),
        ({"region": ""}, "region"),
    ],
)
def test_it_refuses_a_query_parameter_outside_the_document(api_client, query, parameter):
    contact_factory()

    response = api_client.get("/api/v1/contacts/", query)

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert list(response.json()["errors"]) == [parameter]


def test_it_answers_404_for_a_page_past_the_last(api_client):
    assert api_client.get("/api/v1/contacts/", {"page": "2"}).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"key": "blocked", "name": 0, "event_type": "loan_application"}, "name"),
        (
            {"key": "blocked", "name": "Blocked", "event_type": "loan", "description": 5},
            "description",
        ),
    ],
)
def test_it_refuses_a_value_of_the_wrong_json_type(api_client, body, field):
    response = api_client.post("/api/v1/rules/", body, format="json")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]
    assert not Rule.objects.exists()


def test_it_refuses_consent_that_is_not_a_boolean(api_client):
    response = api_client.post(
        "/api/v1/contacts/",
        {"phone": "+14155552671", "consent": {"marketing": 1}},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["errors"] == {"consent": ["marketing: Must be true or false."]}
    assert not Contact.objects.exists()


@pytest.mark.parametrize("key", [" padded", "x" * 256, "tab\tinside", "é"])
def test_it_refuses_an_idempotency_key_the_document_does_not_allow(api_client, key):
    response = api_client.post(
        "/api/v1/events/",
        {"type": "loan_application", "payload": {"amount": 1}},
        format="json",
        HTTP_IDEMPOTENCY_KEY=key,
    )

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["Idempotency-Key"]
    assert not Event.objects.exists()


def test_a_contact_that_cannot_exist_is_not_found(api_client):
    assert api_client.get("/api/v1/contacts/real%20estate/").status_code == 404
    assert api_client.get("/api/v1/contacts/real%20estate/consent/").status_code == 404


def test_a_second_contact_for_a_number_is_a_conflict(api_client):
    contact_factory(phone="+14155552671")

    response = api_client.post("/api/v1/contacts/", {"phone": "(415) 555-2671"}, format="json")

    assert response.status_code == 409
    assert list(response.json()["errors"]) == ["phone"]
    assert Contact.objects.count() == 1


def test_an_event_naming_an_unknown_model_is_not_found(api_client):
    response = api_client.post(
        "/api/v1/events/",
        {"type": "loan_application", "payload": {}, "risk": {"model_id": "nope", "features": {}}},
        format="json",
        HTTP_IDEMPOTENCY_KEY="unknown-model",
    )

    assert response.status_code == 404
    assert "risk.model_id" in response.json()["errors"]
    assert not Event.objects.exists()


def test_a_backtest_of_an_unknown_rule_is_not_found_whatever_its_window(api_client):
    response = api_client.post(
        "/api/v1/backtests/",
        {
            "rule_key": "nope",
            "version": 1,
            "window_start": "2026-11-02T00:00:00Z",
            "window_end": "2026-11-01T00:00:00Z",
        },
        format="json",
    )

    assert response.status_code == 404


@pytest.mark.parametrize("path", ["/api/v1/events/", "/api/v1/predict/"])
@pytest.mark.parametrize(("body", "message"), [("null", "No data provided"), ("[]", "dictionary")])
def test_a_body_that_is_not_an_object_is_refused_for_the_body_as_a_whole(
    api_client, path, body, message
):
    # Both endpoints validate with a serializer shared by every request; its refusals must read
    # as a serializer of the request's own would have them (an object naming the fields).
    response = api_client.post(
        path, body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="not-an-object"
    )

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert list(errors) == ["__all__"]  # NON_FIELD_ERRORS_KEY
    assert message in errors["__all__"][0]
    assert not Event.objects.exists()
