"""HTMX pages: the predict form, the records list and a record with its similar cases."""

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.middleware import HtmxDetails

from core.errors import DomainError
from records.filters import RecordFilter
from records.models import PredictionRecord
from records.selectors import record_get, record_list, record_nearest_to_record, records_summary
from records.services import record_predict
from risk.selectors import model_list, model_list_in_production, model_version_get

PAGE_SIZE = 25


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


SIMILAR_COUNT = 5
ORDERINGS = {
    "-created_at": "Newest first",
    "created_at": "Oldest first",
    "-risk_score": "Highest score",
    "risk_score": "Lowest score",
}


def explanation(record: PredictionRecord) -> dict[str, Any]:
    """Drivers with bar widths relative to the largest one, and the logit they add up to."""
    drivers = record.drivers
    largest = max((abs(d["contribution"]) for d in drivers), default=0.0) or 1.0
    total = sum(d["contribution"] for d in drivers)
    return {
        "drivers": [
            {**d, "width": round(100 * abs(d["contribution"]) / largest, 1)} for d in drivers
        ],
        "base_logit": record.base_logit,
        "logit": None if record.base_logit is None else record.base_logit + total,
    }


def _form_fields(
    model_version: Any, values: dict[str, Any], errors: dict[str, list[str]]
) -> list[dict[str, Any]]:
    fields = []
    for feature in model_version.feature_schema:
        name = feature["name"]
        value = values.get(name, feature.get("example", ""))
        fields.append(
            {
                **feature,
                "value": str(value).lower() if isinstance(value, bool) else value,
                "errors": errors.get(f"features.{name}", []),
            }
        )
    return fields


@login_required
@require_http_methods(["GET", "POST"])
def predict(request: HtmxHttpRequest) -> HttpResponse:
    models = model_list_in_production()
    key = request.POST.get("model") or request.GET.get("model") or "credit-default"
    context: dict[str, Any] = {"nav": "predict", "models": models, "model_key": key}
    try:
        model_version = model_version_get(key=key)
    except DomainError as error:
        context["error"] = error
        return render(request, "records/predict.html", context, status=404)
    values: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        values = {f["name"]: request.POST.get(f["name"], "") for f in model_version.feature_schema}
        try:
            record = record_predict(
                model_id=key, features=values, source=PredictionRecord.Source.FORM
            )
            context.update(record=record, **explanation(record))
        except DomainError as error:
            context["error"] = error
            errors = error.errors
    context["model_version"] = model_version
    context["fields"] = _form_fields(model_version, values, errors)
    if request.htmx:
        # htmx 2 does not swap 4xx responses; the inline errors are the answer, so 200.
        return render(request, "records/predict.html#area", context)
    return render(request, "records/predict.html", context, status=400 if errors else 200)


@login_required
@require_GET
def record_index(request: HtmxHttpRequest) -> HttpResponse:
    ordering = request.GET.get("ordering", "-created_at")
    if ordering not in ORDERINGS:
        ordering = "-created_at"
    filters = RecordFilter(request.GET or None, queryset=record_list())
    queryset = filters.qs if filters.is_bound and filters.is_valid() else record_list()
    page = Paginator(queryset.order_by(ordering, "-id"), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "nav": "records",
        "filters": filters,
        "page": page,
        "query": query.urlencode(),
        "ordering": ordering,
        "orderings": ORDERINGS,
        "labels": ["low", "medium", "high"],
        "sources": PredictionRecord.Source.choices,
        "models": model_list(),
    }
    template = "records/list.html#table" if request.htmx else "records/list.html"
    return render(request, template, context)


@login_required
@require_GET
def record_detail(request: HttpRequest, record_id: int) -> HttpResponse:
    try:
        record = record_get(record_id=record_id)
    except DomainError as error:
        return render(
            request, "records/detail.html", {"error": error, "nav": "records"}, status=404
        )
    context = {"record": record, "nav": "records", **explanation(record)}
    return render(request, "records/detail.html", context)


@login_required
@require_GET
def record_similar(request: HttpRequest, record_id: int) -> HttpResponse:
    try:
        _record, neighbours = record_nearest_to_record(record_id=record_id, k=SIMILAR_COUNT)
    except DomainError as error:
        return render(request, "records/detail.html#similar", {"error": error}, status=404)
    return render(request, "records/detail.html#similar", {"neighbours": neighbours})


@login_required
@require_GET
def records_panel(request: HttpRequest) -> HttpResponse:
    return render(request, "records/panel.html", {"summary": records_summary()})
