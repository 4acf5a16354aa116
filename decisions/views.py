"""HTMX pages: the decisions list, a decision with its trace and replay, the dashboard panel."""

import json
from datetime import timedelta

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_POST
from django_htmx.middleware import HtmxDetails

from core.errors import DomainError
from decisions import selectors, services

PAGE_SIZE = 25


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


class DecisionFilterForm(forms.Form):
    outcome = forms.CharField(required=False, max_length=32)
    event_type = forms.CharField(required=False, max_length=64)
    rule_key = forms.CharField(required=False, max_length=64)
    decided_after = forms.DateTimeField(required=False)
    decided_before = forms.DateTimeField(required=False)


def _page_template(request: HtmxHttpRequest, name: str, partial: str) -> str:
    return f"decisions/{name}.html#{partial}" if request.htmx else f"decisions/{name}.html"


@login_required
def decision_list_page(request: HtmxHttpRequest) -> HttpResponse:
    form = DecisionFilterForm(request.GET)
    filters = form.cleaned_data if form.is_valid() else {}
    decisions = selectors.decision_list(**{key: value for key, value in filters.items() if value})
    page = Paginator(decisions, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "nav": "decisions",
        "form": form,
        "page": page,
        "query": query.urlencode(),
        "choices": selectors.decision_filter_choices() if not request.htmx else {},
    }
    return render(request, _page_template(request, "list", "results"), context)


@login_required
def decision_detail_page(request: HttpRequest, decision_id: int) -> HttpResponse:
    try:
        decision = selectors.decision_get(decision_id=decision_id)
    except DomainError as error:
        return render(request, "decisions/missing.html", {"error": error}, status=404)
    context = {
        "nav": "decisions",
        "decision": decision,
        "payload": json.dumps(decision.event.payload, indent=2, sort_keys=True),
        "risk_request": json.dumps(decision.event.risk_request, indent=2, sort_keys=True)
        if decision.event.risk_request
        else "",
        "trace_total_us": round(sum(entry.get("us", 0) for entry in decision.trace), 2),
        "sms_messages": selectors.decision_messages(decision=decision),
    }
    return render(request, "decisions/detail.html", context)


@login_required
@require_POST
def decision_replay_partial(request: HttpRequest, decision_id: int) -> HttpResponse:
    try:
        decision = selectors.decision_get(decision_id=decision_id)
        replay = services.decision_replay(decision=decision)
    except DomainError as error:
        return render(request, "components/error.html", {"error": error}, status=error.status)
    return render(request, "decisions/detail.html#replay", {"replay": replay})


@login_required
def decisions_panel(request: HttpRequest) -> HttpResponse:
    counts = selectors.decision_counts_by_outcome(since=timezone.now() - timedelta(hours=24))
    total = sum(row["count"] for row in counts)
    for row in counts:
        row["share"] = round(100 * row["count"] / total) if total else 0
    return render(request, "decisions/panel.html", {"counts": counts, "total": total})
