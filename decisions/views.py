"""HTMX pages: the decisions list, a decision with its trace and replay, the dashboard panel."""

import json
from datetime import timedelta

from django import forms
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone

from core.errors import DomainError
from core.pages import HtmxHttpRequest, page_view, paginate, render_page, wants_partial
from decisions import selectors


class DecisionFilterForm(forms.Form):
    outcome = forms.CharField(required=False, max_length=32)
    event_type = forms.CharField(required=False, max_length=64)
    rule_key = forms.CharField(required=False, max_length=64)
    decided_after = forms.DateTimeField(required=False)
    decided_before = forms.DateTimeField(required=False)


@page_view("GET")
def decision_list_page(request: HtmxHttpRequest) -> HttpResponse:
    form = DecisionFilterForm(request.GET)
    filters = form.cleaned_data if form.is_valid() else {}
    decisions = selectors.decision_list(**{key: value for key, value in filters.items() if value})
    context = {
        "nav": "decisions",
        "form": form,
        **paginate(request, decisions),
        # The drop-downs are outside the swapped results: a partial needs no choices.
        "choices": {} if wants_partial(request) else selectors.decision_filter_choices(),
    }
    return render_page(request, "decisions/list.html", context, partial="results")


@page_view("GET")
def decision_detail_page(request: HtmxHttpRequest, decision_id: int) -> HttpResponse:
    decision = selectors.decision_get(decision_id=decision_id)
    event = decision.event
    context = {
        "nav": "decisions",
        "decision": decision,
        "payload": json.dumps(event.payload, indent=2, sort_keys=True),
        "risk_request": json.dumps(event.risk_request, indent=2, sort_keys=True)
        if event.risk_request
        else "",
        "trace_total_us": round(sum(entry.get("us", 0) for entry in decision.trace), 2),
        "sms_messages": selectors.decision_messages(decision=decision),
    }
    return render_page(request, "decisions/detail.html", context)


@page_view("POST")
def decision_replay_partial(request: HtmxHttpRequest, decision_id: int) -> HttpResponse:
    decision = selectors.decision_get(decision_id=decision_id)
    try:
        replay = selectors.decision_replay(decision=decision)
    except DomainError as error:
        return render(request, "components/error.html", {"error": error}, status=error.status)
    return render(request, "decisions/detail.html#replay", {"replay": replay})


@page_view("GET")
def decision_panel_partial(request: HtmxHttpRequest) -> HttpResponse:
    counts = selectors.decision_counts_by_outcome(since=timezone.now() - timedelta(hours=24))
    total = sum(row["count"] for row in counts)
    for row in counts:
        row["share"] = round(100 * row["count"] / total) if total else 0
    return render(request, "decisions/panel.html", {"counts": counts, "total": total})
