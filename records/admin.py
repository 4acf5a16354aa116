"""Read-only admin for prediction records (they are written by scoring only)."""

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from records.models import PredictionRecord
from records.selectors import LIST_FIELDS


@admin.register(PredictionRecord)
class PredictionRecordAdmin(admin.ModelAdmin):
    list_display = list(LIST_FIELDS)
    list_filter = ["model_id", "risk_label", "source"]
    search_fields = ["=id", "=event_id", "=external_id"]
    date_hierarchy = "created_at"
    exclude = ["embedding"]
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[PredictionRecord]:
        return super().get_queryset(request).defer("embedding")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
