"""The model registry API's handlers: list models, read one model's metadata."""

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from core.access import Scope
from core.permissions import ScopeRequired
from core.schema import problem_response
from risk.api import examples
from risk.api.serializers import RiskModelMetadataSerializer, RiskModelSerializer
from risk.models import RiskModel
from risk.selectors import model_get, model_list


@extend_schema_view(
    list=extend_schema(
        summary="List risk models",
        description="Every registered model with its versions, stages and training metrics.",
        examples=[examples.MODEL_LIST],
    )
)
class RiskModelViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Read-only registry: models are registered by management commands."""

    permission_classes = [ScopeRequired]
    required_scopes = {"list": Scope.MODELS_READ, "metadata": Scope.MODELS_READ}
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
        responses={
            200: RiskModelMetadataSerializer,
            **problem_response(404, examples.MODEL_NOT_FOUND),
        },
        examples=[examples.MODEL_METADATA],
    )
    @action(detail=True, methods=["get"], url_path="metadata")
    def metadata(self, request: Request, key: str) -> Response:
        return Response(RiskModelMetadataSerializer(model_get(key=key)).data)
