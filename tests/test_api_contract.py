"""Schemathesis over every operation of our own OpenAPI document, with all of its checks.

Positive cases (what the document allows) must be accepted, negative cases (what it forbids)
refused, every status and body must be documented, and nothing may answer 500. The caller is
an API key with every scope; operations that do not declare the Idempotency-Key header get a
fresh one anyway (it is ignored there), those that declare it get what schemathesis generates.
"""

import uuid

import pytest
import schemathesis
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from core.idempotency import HEADER
from core.models import IdempotencyRecord

# Not config.wsgi: that module also starts the model warm-up a server process wants.
application = get_wsgi_application()

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application).include(
    path_regex=r"^/api/v1/"
)
# PostgreSQL cannot store NUL in text or JSONB; the API document says so and answers 400.
schema.config.generation.update(allow_x00=False)

# Fields whose validity JSON Schema cannot state (each says so in its description): a
# schema-valid value may still be refused with 400, and only these fields (or fields under
# them) may be named when it is.
BEYOND_JSON_SCHEMA = {
    # a number libphonenumber knows, a zone the zone database knows
    ("POST", "/api/v1/contacts/"): {"phone", "time_zone"},
    ("PATCH", "/api/v1/contacts/{phone}/"): {"time_zone"},
    # Jinja under the sandbox's size and work limits
    ("POST", "/api/v1/sms-templates/"): {"body"},
    ("PATCH", "/api/v1/sms-templates/{key}/"): {"body"},
    # CEL and Jinja that compile, a window that is not empty
    ("POST", "/api/v1/campaigns/"): {"config.segment", "config.template", "config.send_window"},
    ("POST", "/api/v1/contacts/import/"): {"file"},  # UTF-8 CSV text
    # the model's own feature schema (names, types, ranges, allowed values)
    ("POST", "/api/v1/predict/"): {"features"},
    ("POST", "/api/v1/records/nearest/"): {"features"},
    ("POST", "/api/v1/events/"): {"risk.features"},
    # an opaque cursor: only one this API issued (in a `next` or `previous` link)
    ("GET", "/api/v1/records/"): {"cursor"},
    # values of the list's own value type (integer, double)
    ("PUT", "/api/v1/lists/{name}/"): {"values"},
}


@pytest.fixture
def keep_test_connection():
    # Django's test client does the same: the WSGI call must not close the test's connection.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def known_names(credit_model):
    """What the document's examples name, so they reach real scoring, rules and contacts."""
    from campaigns.tests.factories import contact_factory
    from decisions.tests.factories import rule_with_version

    contact_factory(phone="+14155552671")
    rule_with_version(condition="event.amount > 1000", outcome="review")


def _refused_beyond_json_schema(case, response) -> bool:
    fields = BEYOND_JSON_SCHEMA.get((case.method.upper(), case.path))
    if fields is None or response.status_code != 400:
        return False
    named = set(response.json().get("errors", {}))
    return bool(named) and all(
        any(name == field or name.startswith(f"{field}.") for field in fields) for name in named
    )


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_the_api_answers_as_its_document_says(case, api_key, known_names, keep_test_connection):
    # Each case is a first request: a key generated twice must not replay another case, and
    # the anonymous requests of earlier cases' auth checks must not throttle this one.
    IdempotencyRecord.objects.all().delete()
    cache.clear()
    headers = {"Authorization": f"Api-Key {api_key[1]}"}
    if HEADER not in (case.headers or {}):
        headers[HEADER] = str(uuid.uuid4())

    response = case.call(headers=headers)

    excluded = [positive_data_acceptance] if _refused_beyond_json_schema(case, response) else []
    case.validate_response(
        response,
        headers=headers,
        excluded_checks=excluded,
        transport_kwargs={"headers": headers},
    )
