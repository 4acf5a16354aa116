"""Admin of the review cases (read-only: they are worked on the review pages and the API) and of
the outbound webhook endpoints (their secret shown once, when made or rotated)."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from core.access import PeopleOnly, Scope
from core.admin_access import PermissionAdminMixin, ReadOnlyAdminMixin
from core.errors import DomainError
from decisions import services
from decisions.admin import AuditTrailMixin
from decisions.models import ReviewCase, WebhookDelivery, WebhookEndpoint


@admin.register(ReviewCase)
class ReviewCaseAdmin(ReadOnlyAdminMixin, PermissionAdminMixin, AuditTrailMixin, admin.ModelAdmin):
    view_permission = Scope.REVIEWS_READ
    list_display = ["id", "decision", "status", "resolution", "risk_score", "opened_at"]
    list_filter = ["status", "resolution"]
    list_select_related = ["decision"]
    readonly_fields = ["audit_trail"]
    audit_target_type = "review_case"
    audit_target_field = "pk"


class WebhookEndpointForm(forms.ModelForm):
    class Meta:
        model = WebhookEndpoint
        fields = ["name", "url", "description", "is_active"]

    def clean_url(self) -> str:
        try:
            return services.webhook_url_validate(self.cleaned_data.get("url") or "")
        except DomainError as error:
            raise forms.ValidationError(error.detail) from None


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(PermissionAdminMixin, AuditTrailMixin, admin.ModelAdmin):
    """Who registers an endpoint decides where decisions go: a people-only permission."""

    view_permission = Scope.RULES_READ
    change_permission = PeopleOnly.WEBHOOKS_MANAGE
    form = WebhookEndpointForm
    list_display = ["name", "url", "is_active", "created_by_label", "created_at"]
    actions = ["rotate_secret"]
    audit_target_type = "webhook_endpoint"
    audit_target_field = "name"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ["name", "created_by_label", "audit_trail"] if obj else []

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # deliveries point at it; switch it off instead (audited)

    def save_model(
        self, request: HttpRequest, obj: WebhookEndpoint, form: Any, change: bool
    ) -> None:
        if change:
            services.webhook_endpoint_update(
                endpoint=obj,
                url=obj.url,
                description=obj.description,
                is_active=obj.is_active,
                actor=request.user,
            )
            return
        created, secret = services.webhook_endpoint_create(
            name=obj.name, url=obj.url, description=obj.description, actor=request.user
        )
        obj.pk = created.pk
        _show_secret_once(request, created, secret)

    @admin.action(description="Rotate the signing secret (shown once)")
    def rotate_secret(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint in queryset:
            secret = services.webhook_endpoint_secret_rotate(endpoint=endpoint, actor=request.user)
            _show_secret_once(request, endpoint, secret)


def _show_secret_once(request: HttpRequest, endpoint: WebhookEndpoint, secret: str) -> None:
    messages.warning(
        request,
        f"Signing secret of {endpoint.name}: {secret} . Copy it now: it is stored encrypted and "
        "never shown again.",
    )


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdminMixin, PermissionAdminMixin, admin.ModelAdmin):
    view_permission = Scope.DECISIONS_READ
    list_display = ["id", "decision", "endpoint", "status", "attempts", "delivered_at"]
    list_filter = ["status", "endpoint"]
    list_select_related = ["endpoint", "decision"]
