"""Test data for the registry: the shipped model trained once per process, registered per test."""

import functools
from typing import Any

from risk.models import ModelVersion
from risk.services import model_version_register_trained
from risk.training import TrainedModel, credit_default_train, german_credit_rows


@functools.cache
def trained_credit_model() -> TrainedModel:
    return credit_default_train(folds=2)


def credit_model_register(*, promote: bool = True, key: str = "credit-default") -> ModelVersion:
    return model_version_register_trained(key=key, trained=trained_credit_model(), promote=promote)


@functools.cache
def _applicants() -> list[dict[str, Any]]:
    return [features for _line, features in german_credit_rows()]


def applicant(index: int = 0, **overrides: Any) -> dict[str, Any]:
    """A real applicant of the data set (row `index`), with optional changes."""
    return {**_applicants()[index], **overrides}
