import pytest

from risk.tests.factories import credit_model_register


@pytest.fixture
def credit_model(db):
    return credit_model_register()
