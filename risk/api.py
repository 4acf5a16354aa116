"""The model registry API: models, versions, metrics and the feature schemas of forms."""

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from risk.models import ModelVersion, RiskModel
from risk.selectors import model_get, model_list

EXAMPLE_METRICS = {
    "cv_folds": 5,
    "roc_auc_mean": 0.78,
    "roc_auc_std": 0.024,
    "brier_mean": 0.169,
    "brier_std": 0.009,
    "roc_auc_out_of_fold": 0.779,
    "training_rows": 1000,
    "positive_rate": 0.3,
}
EXAMPLE_THRESHOLDS = [["low", 0.3], ["medium", 0.6], ["high", None]]
EXAMPLE_SCHEMA = [
    {
        "name": "age",
        "type": "integer",
        "description": "Age in years",
        "required": True,
        "minimum": 18,
        "maximum": 120,
        "example": 33,
    },
    {
        "name": "housing",
        "type": "category",
        "description": "Housing",
        "required": True,
        "values": ["for free", "own", "rent"],
        "example": "own",
    },
    {
        "name": "telephone",
        "type": "boolean",
        "description": "Telephone registered in the customer's name",
        "required": True,
        "example": False,
    },
]


class ModelVersionSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = ModelVersion
        fields = ["version", "stage", "metrics", "created_at", "promoted_at"]


class ModelVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = ModelVersion
        fields = [
            "version",
            "stage",
            "metrics",
            "feature_schema",
            "label_thresholds",
            "dataset_fingerprint",
            "embedding_source_dimensions",
            "created_at",
            "promoted_at",
        ]


def _production_version(model: RiskModel) -> int | None:
    return next(
        (v.version for v in model.versions.all() if v.stage == ModelVersion.Stage.PRODUCTION),
        None,
    )


class RiskModelSerializer(serializers.ModelSerializer):
    production_version = serializers.SerializerMethodField()
    versions = ModelVersionSummarySerializer(many=True, read_only=True)

    class Meta:
        model = RiskModel
        fields = ["key", "name", "description", "production_version", "versions"]

    def get_production_version(self, model: RiskModel) -> int | None:
        return _production_version(model)


class RiskModelMetadataSerializer(RiskModelSerializer):
    versions = ModelVersionSerializer(many=True, read_only=True)  # type: ignore[assignment]


_example_model = {
    "key": "credit-default",
    "name": "Credit default (German Credit)",
    "description": "Logistic regression on the Statlog German Credit data.",
    "production_version": 1,
}
_example_version = {
    "version": 1,
    "stage": "production",
    "metrics": EXAMPLE_METRICS,
    "created_at": "2026-11-23T15:00:00Z",
    "promoted_at": "2026-11-23T15:00:00Z",
}
_list_example = OpenApiExample(
    "Models",
    value={
        "count": 1,
        "next": None,
        "previous": None,
        "results": [{**_example_model, "versions": [_example_version]}],
    },
    response_only=True,
)
_metadata_example = OpenApiExample(
    "Model metadata",
    value={
        **_example_model,
        "versions": [
            {
                **_example_version,
                "feature_schema": EXAMPLE_SCHEMA,
                "label_thresholds": EXAMPLE_THRESHOLDS,
                "dataset_fingerprint": "2c0bae00275c028f…",
                "embedding_source_dimensions": 61,
            }
        ],
    },
    response_only=True,
)
_not_found_example = OpenApiExample(
    "Unknown model",
    value={
        "type": "https://decisioning.example/problems/model_not_found",
        "title": "Model not found",
        "status": 404,
        "detail": "No model 'churn'.",
        "code": "model_not_found",
        "errors": {"model_id": ["unknown model 'churn'"]},
    },
    response_only=True,
    status_codes=["404"],
)


@extend_schema_view(
    list=extend_schema(
        summary="List risk models",
        description="Every registered model with its versions, stages and training metrics.",
        examples=[_list_example],
    )
)
class RiskModelViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Read-only registry: models are registered by management commands."""

    permission_classes = [IsAuthenticated]
    serializer_class = RiskModelSerializer
    lookup_field = "key"
    lookup_value_regex = r"[-a-zA-Z0-9_]+"
    filter_backends: list[Any] = []

    def get_queryset(self) -> QuerySet[RiskModel]:
        return model_list()

    @extend_schema(
        summary="A model's metadata",
        description=(
            "Versions with stage, cross-validated metrics (ROC AUC, Brier score), label "
            "thresholds and the feature schema a form can be rendered from."
        ),
        responses={200: RiskModelMetadataSerializer},
        examples=[_metadata_example, _not_found_example],
    )
    @action(detail=True, methods=["get"], url_path="metadata")
    def metadata(self, request: Request, key: str) -> Response:
        return Response(RiskModelMetadataSerializer(model_get(key=key)).data)


router = SimpleRouter()
router.register("models", RiskModelViewSet, basename="model")

urlpatterns = router.urls
