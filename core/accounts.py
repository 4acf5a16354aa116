"""A person's own account: enrolling a TOTP second factor (django-otp)."""

from typing import Any

import segno
from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django_otp import login as otp_login
from django_otp.forms import OTPAuthenticationForm
from django_otp.plugins.otp_totp.models import TOTPDevice

from core.permissions import page_for_anyone_signed_in

DEVICE_NAME = "Authenticator app"


class LoginForm(OTPAuthenticationForm):
    """User name, password and, once a person has enrolled, their authenticator's code.

    Each person has one authenticator, so the form picks it instead of asking which device.
    """

    error_messages = {
        **OTPAuthenticationForm.error_messages,
        "invalid_login": "Your user name and password did not match. Please try again.",
    }

    def clean_otp(self, user: Any) -> None:
        # django-otp asks everyone for a code; only people who enrolled an authenticator have one
        # (staff without one are held at the enrolment page when production requires it).
        if user is not None and not TOTPDevice.objects.devices_for_user(user, confirmed=True):
            return
        super().clean_otp(user)

    def _chosen_device(self, user: Any) -> Any:
        chosen = super()._chosen_device(user)
        if chosen is None:
            chosen = TOTPDevice.objects.devices_for_user(user, confirmed=True).first()
        return chosen


class TokenForm(forms.Form):
    token = forms.RegexField(
        regex=r"^\d{6}$",
        max_length=6,
        error_messages={"invalid": "Enter the six digits your authenticator app shows."},
    )


@page_for_anyone_signed_in  # each person enrols their own authenticator
def two_factor(request: HttpRequest) -> HttpResponse:
    """Enrol (scan, confirm with a code) or, once enrolled, verify this session."""
    user = request.user
    confirmed = TOTPDevice.objects.devices_for_user(user, confirmed=True).first()
    device = confirmed or TOTPDevice.objects.filter(user=user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=False)
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if device.verify_token(form.cleaned_data["token"]):
            if not device.confirmed:
                device.confirmed = True
                device.save(update_fields=["confirmed"])
                messages.success(request, "Two-factor sign-in is on for your account.")
            otp_login(request, device)
            return HttpResponseRedirect(request.GET.get("next") or reverse("dashboard"))
        form.add_error("token", "That code is not valid (or has been used); try the next one.")
    context = {
        "form": form,
        "enrolled": device.confirmed,
        "verified": request.user.is_verified(),  # type: ignore[union-attr]
        "required": settings.OTP_REQUIRED_FOR_STAFF and request.user.is_staff,
        "qr_svg": None if device.confirmed else _qr_svg(device),
        "secret": None if device.confirmed else _base32_secret(device),
    }
    return render(request, "core/two_factor.html", context)


def _qr_svg(device: TOTPDevice) -> str:
    return segno.make(device.config_url, error="m").svg_inline(scale=4, dark="#111")


def _base32_secret(device: TOTPDevice) -> str:
    # The secret an app asks for when the QR cannot be scanned (spaced for reading aloud).
    secret = device.config_url.split("secret=")[1].split("&")[0]
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
