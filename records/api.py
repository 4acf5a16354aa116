"""Predict, browse records, and find similar cases: /predict/ and /records/ under /api/v1/."""

from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.urls import path
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter
from rest_framework.views import APIView

from core.idempotency import idempotent_response
from records.filters import RecordFilter
from records.models import PredictionRecord
from records.selectors import (
    LIST_FIELDS,
    Neighbour,
    record_list,
    record_nearest_to_features,
    record_nearest_to_record,
)
from records.services import record_predict

EXAMPLE_FEATURES: dict[str, Any] = {
    "checking_account": "no checking account",
    "duration_months": 18,
    "credit_history": "existing credits paid back duly till now",
    "purpose": "radio/television",
    "credit_amount": 2319,
    "savings": "... < 100 DM",
    "employment_since": "1 <= ... < 4 years",
    "installment_rate": 3,
    "personal_status_sex": "male : single",
    "other_debtors": "none",
    "residence_since": 3,
    "property": "car or other, not in attribute Savings account/bonds",
    "age": 33,
    "other_installment_plans": "none",
    "housing": "own",
    "existing_credits": 1,
    "job": "skilled employee / official",
    "dependents": 1,
    "telephone": False,
    "foreign_worker": True,
}
EXAMPLE_DRIVERS = [
    {"feature": "checking_account", "value": "no checking account", "contribution": -0.855},
    {"feature": "savings", "value": "... < 100 DM", "contribution": 0.284},
    {"feature": "purpose", "value": "radio/television", "contribution": -0.219},
]
MAX_FEATURES_KEYS = 200
MAX_VERSION = 2**31 - 1


def _features_field() -> serializers.DictField:
    return serializers.DictField(
        child=serializers.JSONField(),
        allow_empty=True,
        help_text="Feature name → value, as the model's feature schema describes.",
    )


class PredictRequestSerializer(serializers.Serializer):
    model_id = serializers.CharField(max_length=64)
    features = _features_field()
    version = serializers.IntegerField(
        min_value=1, max_value=MAX_VERSION, required=False, allow_null=True
    )

    def validate_features(self, value: dict[str, Any]) -> dict[str, Any]:
        if len(value) > MAX_FEATURES_KEYS:
            raise serializers.ValidationError(f"At most {MAX_FEATURES_KEYS} features.")
        return value


class DriverSerializer(serializers.Serializer):
    feature = serializers.CharField()
    value = serializers.JSONField()
    contribution = serializers.FloatField(help_text="Signed contribution to the logit.")


class PredictionSerializer(serializers.ModelSerializer):
    record_id = serializers.IntegerField(source="id")
    drivers = DriverSerializer(many=True)

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
    drivers = DriverSerializer(many=True)
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

    def get_embedding(self, record: PredictionRecord) -> list[float]:
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
    k = serializers.IntegerField(min_value=1, default=10)

    def validate_k(self, value: int) -> int:
        if value > settings.RECORDS_NEAREST_MAX_K:
            raise serializers.ValidationError(f"At most {settings.RECORDS_NEAREST_MAX_K}.")
        return value


class NearestRequestSerializer(NearestQuerySerializer):
    model_id = serializers.CharField(max_length=64)
    features = _features_field()
    version = serializers.IntegerField(
        min_value=1, max_value=MAX_VERSION, required=False, allow_null=True
    )


def _nearest_body(model_id: str, k: int, neighbours: list[Neighbour]) -> dict[str, Any]:
    return NearestResponseSerializer({"model_id": model_id, "k": k, "results": neighbours}).data


_problem_example = OpenApiExample(
    "Invalid features",
    value={
        "type": "https://decisioning.example/problems/invalid_features",
        "title": "Invalid features",
        "status": 400,
        "detail": "2 features are invalid.",
        "code": "invalid_features",
        "errors": {"features.age": ["must be ≤ 120"], "features.colour": ["unknown feature"]},
    },
    response_only=True,
    status_codes=["400"],
)
_prediction_example = OpenApiExample(
    "Prediction",
    value={
        "record_id": 1042,
        "model_id": "credit-default",
        "model_version": 1,
        "risk_score": 0.138,
        "risk_label": "low",
        "drivers": EXAMPLE_DRIVERS,
        "base_logit": -1.061,
        "created_at": "2026-11-23T15:30:00Z",
    },
    response_only=True,
    status_codes=["201"],
)
_neighbours_example = OpenApiExample(
    "Similar records",
    value={
        "model_id": "credit-default",
        "k": 2,
        "results": [
            {
                "id": 17,
                "distance": 0.041,
                "risk_score": 0.12,
                "risk_label": "low",
                "model_version": 1,
                "source": "backfill",
                "created_at": "2026-11-23T15:00:00Z",
            },
            {
                "id": 230,
                "distance": 0.066,
                "risk_score": 0.35,
                "risk_label": "medium",
                "model_version": 1,
                "source": "api",
                "created_at": "2026-11-23T15:10:00Z",
            },
        ],
    },
    response_only=True,
    status_codes=["200"],
)
_record_example = {
    "id": 1042,
    "created_at": "2026-11-23T15:30:00Z",
    "model_id": "credit-default",
    "model_version": 1,
    "risk_score": 0.138,
    "risk_label": "low",
    "source": "api",
    "event_id": None,
}


class PredictView(APIView):
    """Score features with a model and store the prediction as a record."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="Predict",
        description=(
            "Validates the features against the model's schema, scores them, stores a record "
            "and answers its score, label and drivers (sorted by absolute contribution). "
            "Drivers are exact: `base_logit` (the average applicant's log-odds) plus the "
            "contributions is the logit, and `risk_score` = 1 / (1 + e^-logit). "
            "Optional `Idempotency-Key` header: a retry with the same key and body gets the "
            "stored response again. A rejected request stores nothing."
        ),
        request=PredictRequestSerializer,
        responses={201: PredictionSerializer},
        parameters=[
            OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)
        ],
        examples=[
            OpenApiExample(
                "Score an applicant",
                value={"model_id": "credit-default", "features": EXAMPLE_FEATURES},
                request_only=True,
            ),
            _prediction_example,
            _problem_example,
        ],
    )
    def post(self, request: Request) -> Response:
        payload = PredictRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)

        def produce() -> tuple[int, Any]:
            record = record_predict(
                model_id=payload.validated_data["model_id"],
                features=payload.validated_data["features"],
                version=payload.validated_data.get("version"),
                source=PredictionRecord.Source.API,
            )
            return 201, PredictionSerializer(record).data

        return idempotent_response(request, produce)


@extend_schema_view(
    list=extend_schema(
        summary="List records",
        description=(
            "Predictions newest first; filter by model, label, score range, creation time and "
            "source; `ordering` by `created_at` or `risk_score` (prefix `-` for descending)."
        ),
        examples=[
            OpenApiExample(
                "Records",
                value={"count": 1, "next": None, "previous": None, "results": [_record_example]},
                response_only=True,
            )
        ],
    ),
    retrieve=extend_schema(
        summary="A record",
        description="Features, score, label, drivers, embedding, model version, source, event.",
        examples=[
            OpenApiExample(
                "Record",
                value={
                    **_record_example,
                    "features": EXAMPLE_FEATURES,
                    "drivers": EXAMPLE_DRIVERS,
                    "base_logit": -1.061,
                    "embedding": [0.12, -0.03, 0.0],
                    "external_id": None,
                },
                response_only=True,
            )
        ],
    ),
)
class RecordViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Prediction records and similar-case search."""

    permission_classes = [IsAuthenticated]
    filterset_class = RecordFilter
    ordering_fields = ["created_at", "risk_score"]
    ordering = ["-created_at", "-id"]
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> QuerySet[PredictionRecord]:
        if self.action == "retrieve":
            return PredictionRecord.objects.all()
        return record_list()

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        return RecordDetailSerializer if self.action == "retrieve" else RecordListSerializer

    def filter_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        queryset = super().filter_queryset(queryset)
        # A stable order for equal scores or times, so pages never overlap.
        return queryset.order_by(*queryset.query.order_by, "-id")

    @extend_schema(
        summary="Records similar to a record",
        description="The k nearest records of the same model by cosine distance, itself excluded.",
        parameters=[NearestQuerySerializer],
        responses={200: NearestResponseSerializer},
        examples=[_neighbours_example],
    )
    @action(detail=True, methods=["get"], url_path="nearest", filter_backends=[])
    def nearest(self, request: Request, pk: str) -> Response:
        query = NearestQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        k = query.validated_data["k"]
        record, neighbours = record_nearest_to_record(record_id=int(pk), k=k)
        return Response(_nearest_body(record.model_id, k, neighbours))

    @extend_schema(
        summary="Records similar to features",
        description=(
            "Scores the features (nothing is stored) and returns the k nearest records of the "
            "model by cosine distance between embeddings."
        ),
        request=NearestRequestSerializer,
        responses={200: NearestResponseSerializer},
        examples=[
            OpenApiExample(
                "Similar to an applicant",
                value={"model_id": "credit-default", "features": EXAMPLE_FEATURES, "k": 2},
                request_only=True,
            ),
            _neighbours_example,
            _problem_example,
        ],
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="nearest",
        filter_backends=[],
        pagination_class=None,
    )
    def nearest_search(self, request: Request) -> Response:
        payload = NearestRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        neighbours = record_nearest_to_features(
            model_id=data["model_id"],
            features=data["features"],
            k=data["k"],
            version=data.get("version"),
        )
        return Response(_nearest_body(data["model_id"], data["k"], neighbours))


router = SimpleRouter()
router.register("records", RecordViewSet, basename="record")

urlpatterns = [path("predict/", PredictView.as_view(), name="predict"), *router.urls]
