"""HTMX pages: the decisions list, a decision with its trace and replay, the dashboard panel."""

import json
from datetime import timedelta

from django import forms
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone

from core.access import Scope
from core.errors import DomainError
from core.pages import HtmxHttpRequest, page_view, paginate, render_page, wants_partial
from core.permissions import page_requires
from core.pii import features_mask
from decisions import privacy, selectors


class DecisionFilterForm(forms.Form):
    outcome = forms.CharField(required=False, max_length=32)
    event_type = forms.CharField(required=False, max_length=64)
    rule_key = forms.CharField(required=False, max_length=64)
    decided_after = forms.DateTimeField(required=False)
    decided_before = forms.DateTimeField(required=False)


@page_requires(Scope.DECISIONS_READ)
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


@page_requires(Scope.DECISIONS_READ)
@page_view("GET")
def decision_detail_page(request: HtmxHttpRequest, decision_id: int) -> HttpResponse:
    decision = selectors.decision_get(decision_id=decision_id)
    event = decision.event
    # Personal data unmasked only for pii:read (and that read is audited).
    unmasked = privacy.reader_sees_pii(request.user, decision_ids=[decision.pk])
    payload = event.payload if unmasked else features_mask(event.payload or {})
    risk_request = (
        event.risk_request if unmasked else privacy.risk_request_masked(event.risk_request)
    )
    context = {
        "nav": "decisions",
        "decision": decision,
        "actions": decision.actions if unmasked else privacy.actions_masked(decision.actions),
        "payload": json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False),
        "risk_request": json.dumps(risk_request, indent=2, sort_keys=True, ensure_ascii=False)
        if risk_request
        else "",
        "sms_messages": [
            privacy.message_shown(message, unmasked=unmasked)
            for message in selectors.decision_messages(decision=decision)
        ],
    }
    return render_page(request, "decisions/detail.html", context)


@page_requires(Scope.DECISIONS_READ)
@page_view("POST")
def decision_replay_partial(request: HtmxHttpRequest, decision_id: int) -> HttpResponse:
    decision = selectors.decision_get(decision_id=decision_id)
    try:
        replay = selectors.decision_replay(decision=decision)
    except DomainError as error:
        return render(request, "components/error.html", {"error": error}, status=error.status)
    return render(request, "decisions/detail.html#replay", {"replay": replay})


@page_requires(Scope.DECISIONS_READ)
@page_view("GET")
def decision_panel_partial(request: HtmxHttpRequest) -> HttpResponse:
    counts = selectors.decision_counts_by_outcome(since=timezone.now() - timedelta(hours=24))
    total = sum(row["count"] for row in counts)
    for row in counts:
        row["share"] = round(100 * row["count"] / total) if total else 0
    return render(request, "decisions/panel.html", {"counts": counts, "total": total})
