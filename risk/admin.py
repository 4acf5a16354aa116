"""Admin for the model registry: browse versions, promote one to production."""

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from core.access import Scope
from core.admin_access import PermissionAdminMixin
from core.errors import DomainError
from risk.models import ModelVersion, RiskModel
from risk.services import model_version_promote


class RegistryAccess(PermissionAdminMixin):
    """Reading the registry needs models:read; promoting or renaming, rules:write (a model
    version in production changes what every decision that scores sees)."""

    view_permission = Scope.MODELS_READ
    change_permission = Scope.RULES_WRITE


class ModelVersionInline(RegistryAccess, admin.TabularInline):
    model = ModelVersion
    fields = ("version", "stage", "metrics", "created_at", "promoted_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[ModelVersion]:
        return super().get_queryset(request).defer("artifact")


@admin.register(RiskModel)
class RiskModelAdmin(RegistryAccess, admin.ModelAdmin):
    list_display = ["key", "name", "created_at"]
    search_fields = ["key", "name"]
    readonly_fields = ["key", "created_at"]
    inlines = [ModelVersionInline]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # models are registered by train_model / register_model

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # records and decisions refer to models by key


@admin.register(ModelVersion)
class ModelVersionAdmin(RegistryAccess, admin.ModelAdmin):
    list_display = ["model", "version", "stage", "roc_auc", "brier", "created_at", "promoted_at"]
    list_filter = ["stage", "model"]
    list_select_related = ["model"]
    actions = ["promote"]
    exclude = ["artifact"]
    readonly_fields = [
        "model",
        "version",
        "stage",
        "artifact_sha256",
        "feature_schema",
        "label_thresholds",
        "metrics",
        "dataset_fingerprint",
        "embedding_source_dimensions",
        "encoded_baseline",
        "created_at",
        "promoted_at",
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ModelVersion]:
        return super().get_queryset(request).defer("artifact")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # records refer to versions by number: keep the history

    @admin.display(description="ROC AUC")
    def roc_auc(self, version: ModelVersion) -> object:
        return version.metrics.get("roc_auc_mean")

    @admin.display(description="Brier")
    def brier(self, version: ModelVersion) -> object:
        return version.metrics.get("brier_mean")

    @admin.action(description="Promote the selected version to production", permissions=["change"])
    def promote(self, request: HttpRequest, queryset: QuerySet[ModelVersion]) -> None:
        versions = list(queryset)
        if len(versions) != 1:
            self.message_user(request, "Select exactly one version to promote.", messages.ERROR)
            return
        try:
            promoted = model_version_promote(version_id=versions[0].pk, actor=request.user)
        except DomainError as error:
            self.message_user(request, error.detail, messages.ERROR)
            return
        self.message_user(request, f"{promoted} is now in production.", messages.SUCCESS)
