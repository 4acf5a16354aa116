import pytest


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # The staff fixtures hash a password; PBKDF2 costs a second per test for nothing here.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
