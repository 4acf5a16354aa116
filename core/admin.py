from django.contrib import admin
from rest_framework_api_key.admin import APIKeyModelAdmin

from core.models import ApiKey, AuditEntry


@admin.register(ApiKey)
class ApiKeyAdmin(APIKeyModelAdmin):
    pass


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """Read-only: the trail is append-only, even for superusers."""

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

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
