"""Test data for the registry: the shipped model trained once per test run, registered per test."""

import base64
import dataclasses
import fcntl
import functools
import hashlib
import json
import os
from importlib.metadata import version
from pathlib import Path
from typing import Any

from django.conf import settings

from risk import training
from risk.models import ModelVersion
from risk.services import model_version_register_trained
from risk.training import TrainedModel, credit_default_train, german_credit_rows


@functools.cache
def trained_credit_model() -> TrainedModel:
    """Trained by the first test process that needs it and kept under DATA_DIR, keyed by all the
    training depends on (the data, the recipe, scikit-learn and skops), so the other parallel
    workers and later runs read it instead of training again (seconds of CPU each)."""
    recipe = training.DATA_FILE.read_bytes() + Path(training.__file__).read_bytes()
    recipe += f"{version('scikit-learn')} {version('skops')}".encode()
    cache = settings.DATA_DIR / "test-cache"
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"credit-default-{hashlib.sha256(recipe).hexdigest()[:16]}.json"
    with (cache / "credit-default.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one process trains; the others wait, then read
        if path.exists():
            saved = json.loads(path.read_text())
            return TrainedModel(**saved | {"artifact": base64.b64decode(saved["artifact"])})
        trained = credit_default_train(folds=2)
        saved = dataclasses.asdict(trained) | {"artifact": base64.b64encode(trained.artifact)}
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(saved | {"artifact": saved["artifact"].decode()}))
        partial.replace(path)
        return trained


def credit_model_register(*, promote: bool = True, key: str = "credit-default") -> ModelVersion:
    return model_version_register_trained(key=key, trained=trained_credit_model(), promote=promote)


@functools.cache
def _applicants() -> list[dict[str, Any]]:
    return [features for _line, features in german_credit_rows()]


def applicant(index: int = 0, **overrides: Any) -> dict[str, Any]:
    """A real applicant of the data set (row `index`), with optional changes."""
    return {**_applicants()[index], **overrides}
