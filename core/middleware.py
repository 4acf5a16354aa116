"""Request id propagation, body-size limits and the staff second-factor gate."""

import re
import uuid
from collections.abc import Callable

import structlog
from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from core.problems import problem_response

REQUEST_ID_HEADER = "X-Request-ID"
# Accept a caller's id only when it is a sane token, so logs cannot be forged or flooded.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestIdMiddleware:
    """Take X-Request-ID from the caller (or make one), bind it to logs, echo it back."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # Read META, not request.headers: that is cached on first use, and django-structlog must
        # see the cleaned value written back below.
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else str(uuid.uuid4())
        # django-structlog reads the header to bind request_id; make it see the cleaned value.
        request.META["HTTP_X_REQUEST_ID"] = request_id
        request.request_id = request_id  # type: ignore[attr-defined]
        structlog.contextvars.bind_contextvars(request_id=request_id)
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        return response


class BodySizeLimitMiddleware:
    """Refuse an API body over the limit with 413 before anything reads it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/api/"):
            limit = (
                settings.API_UPLOAD_MAX_BYTES
                if request.content_type == "multipart/form-data"
                else settings.API_MAX_BODY_BYTES
            )
            try:
                length = int(request.headers.get("Content-Length") or 0)
            except ValueError:
                length = 0
            if length > limit:
                return problem_response(
                    status=413,
                    code="body_too_large",
                    detail=f"The request body is {length} bytes; the limit is {limit} bytes.",
                )
        return self.get_response(request)


def current_request_id() -> str | None:
    """The request id bound to this request or task, for audit entries."""
    value = structlog.contextvars.get_contextvars().get("request_id")
    return str(value) if value else None


class StaffSecondFactorMiddleware:
    """With OTP_REQUIRED_FOR_STAFF, a staff session that has not passed a second factor reaches
    only the login, logout and two-factor pages (and the API, which authenticates per request)."""

    OPEN_PREFIXES = ("/login/", "/logout/", "/account/two-factor/", "/static/", "/api/")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if (
            settings.OTP_REQUIRED_FOR_STAFF
            and user is not None
            and user.is_authenticated
            and user.is_staff
            and not user.is_verified()
            and not request.path.startswith(self.OPEN_PREFIXES)
        ):
            return redirect_to_login(request.get_full_path(), reverse("two_factor"))
        return self.get_response(request)
