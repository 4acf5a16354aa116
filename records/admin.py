"""Read-only admin for prediction records (written by scoring only) and drift measurements."""

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from core.access import Scope
from core.admin_access import PermissionAdminMixin, ReadOnlyAdminMixin
from records.models import DriftMeasurement, PredictionRecord
from records.privacy import record_shown
from records.selectors import LIST_FIELDS


@admin.register(PredictionRecord)
class PredictionRecordAdmin(PermissionAdminMixin, admin.ModelAdmin):
    """Shown to records:read; features and drivers masked without pii:read (reads audited)."""

    view_permission = Scope.RECORDS_READ
    list_display = list(LIST_FIELDS)
    list_filter = ["model_id", "risk_label", "source"]
    search_fields = ["=id", "=event_id", "=external_id"]
    date_hierarchy = "created_at"
    exclude = ["embedding"]
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[PredictionRecord]:
        return super().get_queryset(request).defer("embedding")

    def get_object(self, request: HttpRequest, object_id: str, from_field: Any = None) -> Any:
        record = super().get_object(request, object_id, from_field)
        return None if record is None else record_shown(record, reader=request.user)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(DriftMeasurement)
class DriftMeasurementAdmin(ReadOnlyAdminMixin, PermissionAdminMixin, admin.ModelAdmin):
    """Measured by the daily task and `measure_drift`; charted on the drift page."""

    view_permission = Scope.MODELS_READ
    list_display = ["model_id", "model_version", "feature", "psi", "sample_size", "window_end"]
    list_filter = ["model_id", "model_version"]
    date_hierarchy = "window_end"
