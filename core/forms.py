"""One bridge from the services' domain errors to Django forms (admin and HTMX pages alike)."""

from django import forms
from django.core.exceptions import ValidationError

from core.errors import DomainError


def _form_field(form: forms.BaseForm, name: str) -> str | None:
    """The form field a service's error key names (`config.segment`, `values[3]` → its root)."""
    root = name.split("[")[0].split(".")[0]
    return root if root in form.fields else None


def form_add_domain_error(form: forms.BaseForm, error: DomainError) -> None:
    """Attach a service's error to the fields it names, or to the form as a whole."""
    for name, problems in (error.errors or {"__all__": [error.detail]}).items():
        form.add_error(_form_field(form, name), problems)


def validation_error_from(error: DomainError) -> ValidationError:
    """A `clean_<field>` method's error: every message the service gave, each naming its key."""
    messages = [f"{key}: {message}" for key, items in error.errors.items() for message in items]
    return ValidationError(messages or [error.detail])
