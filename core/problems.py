"""RFC 9457 problem details: one error shape for every 4xx and 5xx the API answers."""

from http import HTTPStatus
from typing import Any

import structlog
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.errors import DomainError

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://decisioning.example/problems/"
logger = structlog.get_logger(__name__)


def problem_body(
    *, status: int, code: str, detail: str, title: str | None = None, **extra: Any
) -> dict[str, Any]:
    """The problem document: `type` is a stable URI per error code, `title` its summary."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
    }
    body.update({key: value for key, value in extra.items() if value not in (None, {}, [])})
    return body


def problem_response(**kwargs: Any) -> JsonResponse:
    """A plain Django response carrying problem details (for middleware and URL handlers)."""
    return JsonResponse(
        problem_body(**kwargs), status=kwargs["status"], content_type=PROBLEM_CONTENT_TYPE
    )


def _field_errors(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """Flatten DRF's nested error detail into {"field.sub": ["message", ...]}."""
    if isinstance(detail, dict):
        flat: dict[str, list[str]] = {}
        for key, value in detail.items():
            name = key if key != "non_field_errors" else "__all__"
            flat.update(_field_errors(value, f"{prefix}.{name}" if prefix else str(name)))
        return flat
    if isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            return {prefix or "__all__": [str(item) for item in detail]}
        flat = {}
        for index, item in enumerate(detail):
            flat.update(_field_errors(item, f"{prefix}[{index}]"))
        return flat
    return {prefix or "__all__": [str(detail)]}


def _problem(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    response = Response(body, status=status, content_type=PROBLEM_CONTENT_TYPE, headers=headers)
    return response


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's EXCEPTION_HANDLER: domain errors, DRF errors and Django errors become problems."""
    if isinstance(exc, DomainError):
        return _problem(
            exc.status,
            problem_body(
                status=exc.status,
                code=exc.code,
                title=exc.title,
                detail=exc.detail,
                errors=exc.errors,
                **exc.extra,
            ),
        )
    if isinstance(exc, ValidationError):
        errors = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
        return _problem(
            400,
            problem_body(
                status=400,
                code="invalid_input",
                title="Invalid input",
                detail="The request has invalid fields.",
                errors=errors,
            ),
        )
    if isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = drf_exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        # An unexpected error: log it with its trace, answer without one.
        logger.exception("api_unhandled_exception", exc_info=exc)
        request = context.get("request")
        return _problem(
            500,
            problem_body(
                status=500,
                code="server_error",
                detail="An unexpected error occurred; it has been logged.",
                request_id=getattr(request, "request_id", None) if request else None,
            ),
        )
    assert isinstance(exc, drf_exceptions.APIException)
    if isinstance(exc, drf_exceptions.ValidationError):
        body = problem_body(
            status=response.status_code,
            code="invalid_input",
            title="Invalid input",
            detail="The request has invalid fields.",
            errors=_field_errors(exc.detail),
        )
    else:
        codes = exc.get_codes()
        detail = exc.detail
        body = problem_body(
            status=response.status_code,
            code=codes if isinstance(codes, str) else "error",
            detail=str(detail) if not isinstance(detail, (dict, list)) else str(exc.default_detail),
        )
    headers = {key: value for key, value in response.items() if key.lower() != "content-type"}
    return _problem(response.status_code, body, headers)


def _wants_problem(request: HttpRequest) -> bool:
    return request.path.startswith("/api/") or request.path.startswith("/webhooks/")


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler404: problem details under /api/, the HTML page elsewhere."""
    if _wants_problem(request):
        return problem_response(
            status=404, code="not_found", detail=f"No resource at {request.path}."
        )
    return render(request, "404.html", status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: never a stack trace; a problem under /api/, the HTML page elsewhere."""
    if _wants_problem(request):
        return problem_response(
            status=500,
            code="server_error",
            detail="An unexpected error occurred; it has been logged.",
            request_id=getattr(request, "request_id", None),
        )
    return render(request, "500.html", status=500)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler400 (e.g. a body over Django's upload limit)."""
    if _wants_problem(request):
        return problem_response(
            status=400, code="bad_request", detail=str(exception or "Bad request.")
        )
    return HttpResponse("Bad request", status=400, content_type="text/plain")


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _wants_problem(request):
        return problem_response(
            status=403,
            code="permission_denied",
            detail="You do not have permission to perform this action.",
        )
    return HttpResponse("Forbidden", status=403, content_type="text/plain")


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: session-authenticated API writes without a token get a problem too."""
    if _wants_problem(request):
        return problem_response(
            status=403, code="csrf_failed", detail=f"CSRF check failed: {reason}"
        )
    return HttpResponse(f"CSRF check failed: {reason}", status=403, content_type="text/plain")
