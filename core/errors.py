"""The domain error hierarchy: services raise these, the API and the HTMX views render them."""

from typing import Any


class DomainError(Exception):
    """A failure the caller can act on: carries a stable code, an HTTP status and field errors."""

    code = "domain_error"
    status = 400
    title = "The request could not be processed"

    def __init__(self, detail: str, *, errors: dict[str, list[str]] | None = None, **extra: Any):
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or {}
        self.extra = extra


class InvalidInput(DomainError):
    code = "invalid_input"
    status = 400
    title = "Invalid input"


class NotFound(DomainError):
    code = "not_found"
    status = 404
    title = "Not found"


class Conflict(DomainError):
    code = "conflict"
    status = 409
    title = "Conflict"


class Unprocessable(DomainError):
    code = "unprocessable"
    status = 422
    title = "Unprocessable request"
