"""Log-in guard-rails: lockout after repeated wrong passwords, TOTP second factor for staff."""

import pytest
from django.contrib.auth import get_user_model
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

pytestmark = pytest.mark.django_db


@pytest.fixture
def person(django_user_model):
    return django_user_model.objects.create_user(
        username="ana", password="right-pass-123", is_staff=True
    )


def log_in(client, password, **extra):
    return client.post("/login/", {"username": "ana", "password": password, **extra})


def current_code(device: TOTPDevice, *, drift: int = 0) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, drift=drift):06d}"


def test_twenty_wrong_passwords_lock_the_login_even_for_the_right_one(client, person, settings):
    for _ in range(20):
        log_in(client, "wrong-pass")

    locked = log_in(client, "right-pass-123")

    assert locked.status_code in (403, 429)
    assert b"Too many failed log-ins" in locked.content
    assert "_auth_user_id" not in client.session
    assert settings.AXES_FAILURE_LIMIT <= 20


def test_a_person_enrols_a_totp_device_and_then_needs_its_code_to_log_in(client, person, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # django-otp slows retries after a wrong code
    client.force_login(person)
    page = client.get("/account/two-factor/")
    device = TOTPDevice.objects.get(user=person)
    assert page.status_code == 200
    assert b"<svg" in page.content
    assert not device.confirmed

    wrong = client.post("/account/two-factor/", {"token": "000000"})
    assert wrong.status_code == 200
    assert not TOTPDevice.objects.get(pk=device.pk).confirmed

    confirmed = client.post("/account/two-factor/", {"token": current_code(device)})
    assert confirmed.status_code == 302
    assert TOTPDevice.objects.get(pk=device.pk).confirmed

    client.logout()
    without_code = log_in(client, "right-pass-123")
    assert without_code.status_code == 200
    assert "_auth_user_id" not in client.session

    device.refresh_from_db()
    with_code = log_in(client, "right-pass-123", otp_token=current_code(device, drift=1))
    assert with_code.status_code == 302, with_code.context["form"].errors
    assert client.session["_auth_user_id"] == str(person.pk)


def test_production_sends_an_unverified_staff_session_to_the_second_factor(
    client, person, settings
):
    settings.OTP_REQUIRED_FOR_STAFF = True
    client.force_login(person)

    response = client.get("/")

    assert response.status_code == 302
    assert response["Location"].startswith("/account/two-factor/")


def test_people_who_are_not_staff_are_not_held_at_the_second_factor(client, settings):
    settings.OTP_REQUIRED_FOR_STAFF = True
    someone = get_user_model().objects.create_user(username="bo", password="x-pass-123456")
    client.force_login(someone)

    response = client.get("/")

    assert not response.get("Location", "").startswith("/account/two-factor/")


def test_a_person_without_an_authenticator_logs_in_with_the_password_alone(client, person):
    response = log_in(client, "right-pass-123")

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(person.pk)
