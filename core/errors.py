"""The domain error hierarchy: services raise these, the API and the HTMX views render them."""

from typing import Any


class DomainError(Exception):
    """A failure the caller can act on: carries a stable code, an HTTP status and field errors.

    A subclass names its code, status and title as class keywords
    (`class Gone(DomainError, code="gone", status=410, title="Gone")`) or as class attributes;
    what it does not name it inherits.
    """

    code = "domain_error"
    status = 400
    title = "The request could not be processed"

    def __init_subclass__(
        cls,
        *,
        code: str | None = None,
        status: int | None = None,
        title: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        for name, value in (("code", code), ("status", status), ("title", title)):
            if value is not None:
                setattr(cls, name, value)

    def __init__(self, detail: str, *, errors: dict[str, list[str]] | None = None, **extra: Any):
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or {}
        self.extra = extra


class InvalidInput(DomainError, code="invalid_input", status=400, title="Invalid input"):
    """The request names a field with a value the service refuses."""


class NotFound(DomainError, code="not_found", status=404, title="Not found"):
    """What the request names does not exist (or is not visible to the caller)."""


class Conflict(DomainError, code="conflict", status=409, title="Conflict"):
    """The request is well-formed but clashes with the current state."""


class Unprocessable(DomainError, code="unprocessable", status=422, title="Unprocessable request"):
    """The request cannot be processed as sent (e.g. an Idempotency-Key reused with a new body)."""
