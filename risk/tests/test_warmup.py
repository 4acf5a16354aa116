"""Production models are loaded when a web or worker process starts, before any request."""

import importlib
import sys
import time

import pytest
from celery.signals import worker_process_init

from risk.scoring import loaded_model_is_cached

pytestmark = pytest.mark.django_db(transaction=True)  # the warm-up thread has its own connection


def wait_until_cached(version, *, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if loaded_model_is_cached(version_id=version.pk, artifact_sha256=version.artifact_sha256):
            return True
        time.sleep(0.05)
    return False


def test_it_loads_the_production_model_when_a_celery_child_starts(credit_model):
    assert not loaded_model_is_cached(
        version_id=credit_model.pk, artifact_sha256=credit_model.artifact_sha256
    )

    worker_process_init.send(sender="celery@test")

    assert wait_until_cached(credit_model)


def test_it_loads_the_production_model_when_a_web_worker_imports_the_app(credit_model):
    sys.modules.pop("config.wsgi", None)

    importlib.import_module("config.wsgi")

    assert wait_until_cached(credit_model)
