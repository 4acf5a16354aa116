"""Schemathesis over every endpoint of our own OpenAPI document: no generated input gives a 500."""

import uuid

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck, settings

# Not config.wsgi: that module also starts the model warm-up a server process wants.
application = get_wsgi_application()

CSRF_SECRET = "apiContractTestCsrfSecret0000001"

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application).include(
    path_regex=r"^/api/v1/"
)


@pytest.fixture
def keep_test_connection():
    # Django's test client does the same: the WSGI call must not close the test's connection.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def session_headers(staff_user, keep_test_connection):
    client = Client()
    client.force_login(staff_user)
    cookie = f"sessionid={client.cookies['sessionid'].value}; csrftoken={CSRF_SECRET}"
    return {"Cookie": cookie, "X-CSRFToken": CSRF_SECRET}


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_it_never_answers_a_server_error(case, session_headers):
    response = case.call(headers={**session_headers, "Idempotency-Key": str(uuid.uuid4())})

    assert response.status_code < 500, (case.method, case.formatted_path, response.text[:500])
