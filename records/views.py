"""HTMX pages: the predict form, the records list (with its CSV and histogram), a record with
its similar cases, the overview's predictions panel, and the drift of the production models."""

from typing import Any

from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone

from core import charts
from core.access import Scope
from core.errors import DomainError
from core.pages import HtmxHttpRequest, page_view, paginate, render_page
from core.permissions import page_requires
from core.timeseries import time_range_get
from records.charts import psi_chart
from records.export import records_csv
from records.filters import RecordFilter
from records.models import PredictionRecord
from records.privacy import record_shown
from records.selectors import (
    drift_overview,
    record_get,
    record_list,
    record_nearest_to_record,
    record_risk_labels,
    record_score_histogram,
    records_summary,
)
from records.services import record_predict
from risk.selectors import model_list, model_list_in_production, model_version_get

DEFAULT_MODEL = "credit-default"
SIMILAR_COUNT = 5
REASON_COUNT = 3
DEFAULT_ORDERING = "-created_at"
ORDERINGS = {
    "-created_at": "Newest first",
    "created_at": "Oldest first",
    "-risk_score": "Highest score",
    "risk_score": "Lowest score",
}


def explanation(record: PredictionRecord) -> dict[str, Any]:
    """The drivers as a signed chart, the reasons (what raised the risk most), and the logit
    they add up to from the average applicant."""
    drivers = record.drivers
    total = sum(d["contribution"] for d in drivers)
    raising = sorted(
        (d for d in drivers if d["contribution"] > 0), key=lambda d: -d["contribution"]
    )
    return {
        "drivers": drivers,
        "drivers_chart": charts.bars(
            title="Drivers: contribution of each feature to the log-odds",
            values=[(d["feature"], d["contribution"]) for d in drivers],
            signed=True,
            width=charts.PANEL_WIDTH,  # it sits in half the page
        ),
        "reasons": raising[:REASON_COUNT],
        "base_logit": record.base_logit,
        "logit": None if record.base_logit is None else record.base_logit + total,
    }


def form_fields(
    model_version: Any, values: dict[str, Any], errors: dict[str, list[str]]
) -> list[dict[str, Any]]:
    """The model's feature schema as form fields: the input to draw (number with its range and
    step, or a select), the value typed (or the example), the help text and the errors."""
    fields = []
    for feature in model_version.feature_schema:
        name = feature["name"]
        value = values.get(name, feature.get("example", ""))
        fields.append(
            {
                **feature,
                "label": name.replace("_", " ").capitalize(),
                "step": "1" if feature["type"] == "integer" else "any",
                "value": str(value).lower() if isinstance(value, bool) else value,
                "errors": errors.get(f"features.{name}", []),
            }
        )
    return fields


@page_requires(Scope.PREDICT)
@page_view("GET", "POST")
def record_predict_page(request: HtmxHttpRequest) -> HttpResponse:
    """The form is the production model's schema; picking another model swaps the form."""
    key = request.POST.get("model") or request.GET.get("model") or DEFAULT_MODEL
    model_version = model_version_get(key=key)
    context: dict[str, Any] = {
        "nav": "predict",
        "models": model_list_in_production(),
        "model_key": key,
        "model_version": model_version,
    }
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
    context["fields"] = form_fields(model_version, values, errors)
    status = 400 if errors else 200
    return render_page(request, "records/predict.html", context, partial="area", status=status)


def _filtered(request: HtmxHttpRequest) -> tuple[RecordFilter, Any, str]:
    """The list's filters (bound to the query string), the records they select, the order."""
    ordering = request.GET.get("ordering", DEFAULT_ORDERING)
    if ordering not in ORDERINGS:
        ordering = DEFAULT_ORDERING
    filters = RecordFilter(request.GET or None, queryset=record_list())
    records = filters.qs if filters.is_bound and filters.is_valid() else record_list()
    return filters, records, ordering


@page_requires(Scope.RECORDS_READ)
@page_view("GET")
def record_list_page(request: HtmxHttpRequest) -> HttpResponse:
    filters, records, ordering = _filtered(request)
    context = {
        "nav": "records",
        "filters": filters,
        **paginate(request, records.order_by(ordering, "-id")),
        "histogram": charts.histogram(
            title="Risk scores of the records shown",
            counts=record_score_histogram(records=records),
            width=charts.PAGE_WIDTH,
        ),
        "ordering": ordering,
        "orderings": ORDERINGS,
        # Callables are called by the template only where used: the table partial skips them.
        "labels": record_risk_labels,
        "sources": PredictionRecord.Source.choices,
        "models": model_list,
    }
    return render_page(request, "records/list.html", context, partial="table")


@page_requires(Scope.RECORDS_READ)
@page_view("GET")
def record_export_csv(request: HtmxHttpRequest) -> StreamingHttpResponse:
    """The filtered set as CSV (the list's columns), streamed; invalid filters export all,
    as the list then shows all."""
    _filters, records, ordering = _filtered(request)
    response = StreamingHttpResponse(
        records_csv(records.order_by(ordering, "-id")), content_type="text/csv; charset=utf-8"
    )
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    response["Content-Disposition"] = f'attachment; filename="records-{stamp}.csv"'
    return response


@page_requires(Scope.RECORDS_READ)
@page_view("GET")
def record_detail_page(request: HtmxHttpRequest, record_id: int) -> HttpResponse:
    record = record_shown(record_get(record_id=record_id), reader=request.user)
    context = {"record": record, "nav": "records", **explanation(record)}
    return render_page(request, "records/detail.html", context)


@page_requires(Scope.RECORDS_READ)
@page_view("GET")
def record_similar_partial(request: HtmxHttpRequest, record_id: int) -> HttpResponse:
    _record, neighbours = record_nearest_to_record(record_id=record_id, k=SIMILAR_COUNT)
    return render(request, "records/detail.html#similar", {"neighbours": neighbours})


@page_requires(Scope.RECORDS_READ)
@page_view("GET")
def record_panel_partial(request: HtmxHttpRequest) -> HttpResponse:
    """The overview's predictions: labels and the score distribution over the picked range."""
    time_range = time_range_get(request.GET.get("range"))
    summary = records_summary(since=time_range.since(now=timezone.now()))
    chart = charts.histogram(
        title="Risk scores of recent predictions",
        counts=summary.histogram,
        width=charts.PANEL_WIDTH,
    )
    context = {"summary": summary, "chart": chart, "time_range": time_range}
    return render(request, "records/panel.html", context)


# The score and the features whose drift is worst share the big chart; every series gets its row.
CHARTED_SERIES = 6


@page_requires(Scope.MODELS_READ)
@page_view("GET")
def drift_page(request: HtmxHttpRequest) -> HttpResponse:
    versions = [
        {
            "drift": version,
            "chart": psi_chart(version.series[:CHARTED_SERIES]),
            "rows": [(one, psi_chart([one], width=160, height=32)) for one in version.series],
        }
        for version in drift_overview()
    ]
    return render_page(request, "records/drift.html", {"nav": "drift", "versions": versions})
