"""The model registry API's wire shapes: models and their versions."""

from rest_framework import serializers

from risk.models import ModelVersion, RiskModel


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


class RiskModelSerializer(serializers.ModelSerializer):
    production_version = serializers.SerializerMethodField()
    versions = ModelVersionSummarySerializer(many=True, read_only=True)

    class Meta:
        model = RiskModel
        fields = ["key", "name", "description", "production_version", "versions"]

    def get_production_version(self, model: RiskModel) -> int | None:
        # From the prefetched versions: no query per model.
        versions = model.versions.all()
        return next((v.version for v in versions if v.stage == ModelVersion.Stage.PRODUCTION), None)


class RiskModelMetadataSerializer(RiskModelSerializer):
    versions = ModelVersionSerializer(many=True, read_only=True)  # type: ignore[assignment]
