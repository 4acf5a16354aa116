"""The records API's handlers: predict, list and read records, find similar records."""

from typing import Any

from django.db.models import QuerySet
from django.http import HttpResponse
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.access import Scope
from core.idempotency import idempotent_response
from core.pagination import KeysetPagination
from core.permissions import ScopeRequired
from core.schema import idempotency_key_parameter, problem_response
from core.serializers import input_validated
from records.api import examples
from records.api.serializers import (
    NearestQuerySerializer,
    NearestRequestSerializer,
    NearestResponseSerializer,
    PredictionSerializer,
    PredictRequestSerializer,
    RecordDetailSerializer,
    RecordListSerializer,
)
from records.filters import RecordFilter
from records.models import PredictionRecord
from records.privacy import record_shown
from records.selectors import (
    Neighbour,
    record_list,
    record_nearest_to_features,
    record_nearest_to_record,
)
from records.services import record_predict


def _nearest_body(model_id: str, k: int, neighbours: list[Neighbour]) -> dict[str, Any]:
    return NearestResponseSerializer({"model_id": model_id, "k": k, "results": neighbours}).data


# One instance for every answer: a ModelSerializer builds its fields (introspecting the model)
# on first use and keeps them; a new one per prediction cost more than the scoring. Its fields
# hold no state of one call: to_representation only reads them.
_PREDICTION = PredictionSerializer()
# And one for every request's input (core.serializers.input_validated says why).
_PREDICT_INPUT = PredictRequestSerializer()


class PredictView(APIView):
    """Score features with a model and store the prediction as a record.

    The answer is not masked: the caller sent these features itself.
    """

    permission_classes = [ScopeRequired]
    required_scopes = {"POST": Scope.PREDICT}

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
        responses={
            201: PredictionSerializer,
            **problem_response(400, examples.INVALID_FEATURES),
        },
        parameters=[idempotency_key_parameter()],
        examples=[examples.PREDICT_REQUEST, examples.PREDICTION],
    )
    def post(self, request: Request) -> HttpResponse:
        payload = input_validated(_PREDICT_INPUT, request.data)

        def produce() -> tuple[int, Any]:
            record = record_predict(
                model_id=payload["model_id"],
                features=payload["features"],
                version=payload.get("version"),
                source=PredictionRecord.Source.API,
            )
            return 201, _PREDICTION.to_representation(record)

        return idempotent_response(request, produce)


@extend_schema_view(
    list=extend_schema(
        summary="List records",
        description=(
            "Predictions newest first; filter by model, label, score range, creation time and "
            "source; `ordering` by `created_at` or `risk_score` (prefix `-` for descending; "
            "equal values in id order, the same direction). Pages by cursor, without a count: "
            "follow `next` until it is null; `page_size` 1 to 200 (default 50). A page costs the "
            "same however deep it is and however many records there are."
        ),
        examples=[examples.RECORD_LIST],
    ),
    retrieve=extend_schema(
        summary="A record",
        description="Features, score, label, drivers, embedding, model version, source, event.",
        examples=[examples.RECORD],
    ),
)
class RecordViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Prediction records and similar-case search; features masked without pii:read."""

    permission_classes = [ScopeRequired]
    required_scopes = {
        "list": Scope.RECORDS_READ,
        "retrieve": Scope.RECORDS_READ,
        "nearest": Scope.RECORDS_READ,
        "nearest_search": Scope.RECORDS_READ,
    }
    filterset_class = RecordFilter
    # Pages by cursor, with the id as the tie-break: a page costs the same at 10 k and 1 M
    # records (docs/benchmarks), where a page number's count(*) grew with the table.
    pagination_class = KeysetPagination
    ordering_fields = ["created_at", "risk_score"]
    ordering = ["-created_at"]
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> QuerySet[PredictionRecord]:
        if self.action == "retrieve":
            return PredictionRecord.objects.all()
        return record_list()

    def get_object(self) -> PredictionRecord:
        return record_shown(super().get_object(), reader=self.request.user)

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        return RecordDetailSerializer if self.action == "retrieve" else RecordListSerializer

    @extend_schema(
        summary="Records similar to a record",
        description="The k nearest records of the same model by cosine distance, itself excluded.",
        parameters=[NearestQuerySerializer],
        responses={200: NearestResponseSerializer},
        examples=[examples.NEIGHBOURS],
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
        responses={
            200: NearestResponseSerializer,
            **problem_response(400, examples.INVALID_FEATURES),
        },
        examples=[examples.NEAREST_REQUEST, examples.NEIGHBOURS],
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
