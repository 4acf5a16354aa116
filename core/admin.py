"""The kernel in admin: API keys (keys:manage) and the audit trail (audit:read, read-only).

The admin site itself admits staff only (`is_staff`); inside it, each page asks the permission
its admin class names, so a person in a role sees exactly the parts their role grants.
"""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from rest_framework_api_key.models import APIKey

from core.access import ALL_SCOPES, SCOPE_DESCRIPTIONS, PeopleOnly
from core.admin_access import PermissionAdminMixin
from core.errors import DomainError
from core.forms import form_add_domain_error
from core.models import ApiKey, AuditEntry
from core.services import api_key_create, api_key_input_validate, api_key_revoke

# The package's own key model is not the one our authentication reads; hide it.
admin.site.unregister(APIKey)


class ApiKeyCreateForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=[(scope, f"{scope} — {SCOPE_DESCRIPTIONS[scope]}") for scope in sorted(ALL_SCOPES)],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="What the key may do; a key without scopes can do nothing.",
    )

    class Meta:
        model = ApiKey
        fields = ["name", "scopes", "expiry_date"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        try:  # the service's own checks, so the form and the service never disagree
            api_key_input_validate(
                name=cleaned.get("name") or "",
                scopes=cleaned.get("scopes") or [],
                expires_at=cleaned.get("expiry_date"),
            )
        except DomainError as error:
            form_add_domain_error(self, _renamed(error))
        return cleaned


def _renamed(error: DomainError) -> DomainError:
    # The service calls the expiry `expires_at`; the model field is `expiry_date`.
    if "expires_at" in error.errors:
        error.errors["expiry_date"] = error.errors.pop("expires_at")
    return error


@admin.register(ApiKey)
class ApiKeyAdmin(PermissionAdminMixin, admin.ModelAdmin):
    """Create (the key is shown once) and revoke, both audited; a key is never edited or deleted,
    so the trail of what it could do stays true. A key with other scopes is a new key."""

    view_permission = PeopleOnly.KEYS_MANAGE
    change_permission = PeopleOnly.KEYS_MANAGE
    form = ApiKeyCreateForm
    list_display = (
        "prefix",
        "name",
        "scope_list",
        "created",
        "expiry_date",
        "_has_expired",
        "revoked",
        "last_used_at",
    )
    list_filter = ("revoked", "created")
    search_fields = ("name", "prefix")
    actions = ["revoke_keys"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if obj is None:
            return ()
        return ("prefix", "name", "scope_list", "created", "expiry_date", "revoked", "last_used_at")

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if obj is None:
            return ("name", "scopes", "expiry_date")
        return self.get_readonly_fields(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # read-only once created: revoke it (an audited action) instead

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return self._may(request, self.change_permission)

    @admin.display(description="scopes")
    def scope_list(self, api_key: ApiKey) -> str:
        return ", ".join(api_key.scopes) or "none (can do nothing)"

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        created, raw_key = api_key_create(
            name=form.cleaned_data["name"],
            scopes=form.cleaned_data["scopes"],
            expires_at=form.cleaned_data["expiry_date"],
            actor=request.user,
        )
        # The admin goes on with `obj` (its log entry, the redirect): make it the saved key.
        for field in ApiKey._meta.concrete_fields:
            setattr(obj, field.attname, getattr(created, field.attname))
        obj._state.adding = False
        messages.warning(
            request,
            f"The API key for {created.name} is: {raw_key} — store it now; it cannot be shown "
            "again.",
        )

    @admin.action(description="Revoke the selected keys", permissions=["revoke"])
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        for api_key in queryset:
            api_key_revoke(prefix=api_key.prefix, actor=request.user)
        messages.success(request, f"Revoked {len(queryset)} key(s).")


@admin.register(AuditEntry)
class AuditEntryAdmin(PermissionAdminMixin, admin.ModelAdmin):
    """Read-only for those who may read it: the trail is append-only, even for superusers."""

    view_permission = PeopleOnly.AUDIT_READ
    list_display = (
        "occurred_at",
        "actor_label",
        "action",
        "target_type",
        "target_id",
        "request_id",
    )
    list_filter = ("action", "target_type")
    search_fields = ("target_id", "actor_label", "request_id")
    readonly_fields = [field.name for field in AuditEntry._meta.fields]
    # No change_permission: nobody adds, changes or deletes an entry here.
