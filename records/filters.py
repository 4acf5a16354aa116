"""The record list filters, shared by the API and the records page."""

import django_filters

from core.filters import UtcIsoDateTimeFilter
from records.models import PredictionRecord


class RecordFilter(django_filters.FilterSet):
    model_id = django_filters.CharFilter(field_name="model_id", max_length=64)
    risk_label = django_filters.CharFilter(
        field_name="risk_label",
        max_length=32,
        help_text="A label of the model's label thresholds (GET /api/v1/models/), e.g. high.",
    )
    source = django_filters.ChoiceFilter(choices=PredictionRecord.Source.choices)
    min_score = django_filters.NumberFilter(
        field_name="risk_score", lookup_expr="gte", min_value=0, max_value=1
    )
    max_score = django_filters.NumberFilter(
        field_name="risk_score", lookup_expr="lte", min_value=0, max_value=1
    )
    created_after = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = PredictionRecord
        fields = [
            "model_id",
            "risk_label",
            "source",
            "min_score",
            "max_score",
            "created_after",
            "created_before",
        ]
