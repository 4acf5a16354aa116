"""The records API's wire shapes: predict and nearest requests, predictions, records."""

from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.serializers import StrictSerializer
from records.models import PredictionRecord
from records.selectors import LIST_FIELDS

MAX_FEATURES_KEYS = 200
MAX_VERSION = 2**31 - 1


class ModelFeaturesSerializer(StrictSerializer):
    """A model, optionally one of its versions, and an applicant's features."""

    model_id = serializers.CharField(max_length=64, trim_whitespace=False)
    features = serializers.DictField(
        child=serializers.JSONField(allow_null=True),
        allow_empty=True,
        help_text="Feature name → value, as the model's feature schema describes.",
    )
    version = serializers.IntegerField(
        min_value=1, max_value=MAX_VERSION, required=False, allow_null=True
    )


class PredictRequestSerializer(ModelFeaturesSerializer):
    def validate_features(self, value: dict[str, Any]) -> dict[str, Any]:
        if len(value) > MAX_FEATURES_KEYS:
            raise serializers.ValidationError(f"At most {MAX_FEATURES_KEYS} features.")
        return value


class DriverSerializer(serializers.Serializer):
    feature = serializers.CharField()
    value = serializers.JSONField()
    contribution = serializers.FloatField(help_text="Signed contribution to the logit.")


@extend_schema_field(DriverSerializer(many=True))
class DriversField(serializers.Field):
    """A record's drivers as DriverSerializer(many=True) answers them, from the stored list
    without DRF's per-item machinery (twenty nested serializations cost more than scoring)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(read_only=True, **kwargs)

    def to_representation(self, value: Any) -> list[dict[str, Any]]:
        return [
            {
                "feature": str(driver["feature"]),
                "value": driver["value"],
                "contribution": float(driver["contribution"]),
            }
            for driver in value
        ]


class PredictionSerializer(serializers.ModelSerializer):
    record_id = serializers.IntegerField(source="id")
    drivers = DriversField()

    class Meta:
        model = PredictionRecord
        fields = [
            "record_id",
            "model_id",
            "model_version",
            "risk_score",
            "risk_label",
            "drivers",
            "base_logit",
            "created_at",
        ]


class RecordListSerializer(serializers.ModelSerializer):
    class Meta:
        model = PredictionRecord
        fields = list(LIST_FIELDS)


class RecordDetailSerializer(serializers.ModelSerializer):
    drivers = DriversField()
    embedding = serializers.SerializerMethodField()

    class Meta:
        model = PredictionRecord
        fields = [
            "id",
            "created_at",
            "model_id",
            "model_version",
            "features",
            "risk_score",
            "risk_label",
            "drivers",
            "base_logit",
            "embedding",
            "source",
            "event_id",
            "external_id",
        ]

    @extend_schema_field(
        serializers.ListField(child=serializers.FloatField(), allow_null=True),
    )
    def get_embedding(self, record: PredictionRecord) -> list[float] | None:
        # Null without pii:read: the embedding encodes the applicant's features.
        if record.embedding is None:
            return None
        return [round(float(value), 6) for value in record.embedding]


class NeighbourSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="record.id")
    distance = serializers.FloatField(help_text="Cosine distance (0 = same direction).")
    risk_score = serializers.FloatField(source="record.risk_score")
    risk_label = serializers.CharField(source="record.risk_label")
    model_version = serializers.IntegerField(source="record.model_version")
    source = serializers.CharField(source="record.source")  # type: ignore[assignment]
    created_at = serializers.DateTimeField(source="record.created_at")


class NearestResponseSerializer(serializers.Serializer):
    model_id = serializers.CharField()
    k = serializers.IntegerField()
    results = NeighbourSerializer(many=True)


class NearestQuerySerializer(serializers.Serializer):
    k = serializers.IntegerField(min_value=1, max_value=settings.RECORDS_NEAREST_MAX_K, default=10)


class NearestRequestSerializer(NearestQuerySerializer, ModelFeaturesSerializer):
    pass
