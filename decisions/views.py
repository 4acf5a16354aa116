"""HTMX pages: the decisions list, a decision with its trace and replay, the dashboard panel,
and the review queue with its case pages (claim and resolve)."""

import json
from datetime import timedelta

from django import forms
from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone

from core import charts
from core.access import Scope
from core.authentication import client_scope
from core.errors import DomainError, InvalidInput
from core.pages import HtmxHttpRequest, page_view, paginate, render_page, wants_partial
from core.permissions import page_requires, request_may
from core.pii import features_mask
from core.timeseries import series_fill, time_range_get
from decisions import privacy, replay_selectors, review_selectors, selectors, services
from decisions.exceptions import ReviewCaseConflict
from decisions.models import ReviewCase
from decisions.services.reviews import MAX_NOTE_LENGTH


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
        "reasons": decision.reasons if unmasked else privacy.reasons_masked(decision.reasons),
        "payload": json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False),
        "risk_request": json.dumps(risk_request, indent=2, sort_keys=True, ensure_ascii=False)
        if risk_request
        else "",
        "sms_messages": [
            privacy.message_shown(message, unmasked=unmasked)
            for message in selectors.decision_messages(decision=decision)
        ],
        "webhooks": review_selectors.decision_webhooks(decision=decision),
    }
    return render_page(request, "decisions/detail.html", context)


@page_requires(Scope.DECISIONS_READ)
@page_view("POST")
def decision_replay_partial(request: HtmxHttpRequest, decision_id: int) -> HttpResponse:
    decision = selectors.decision_get(decision_id=decision_id)
    try:
        replay = replay_selectors.decision_replay(decision=decision)
    except DomainError as error:
        return render(request, "components/error.html", {"error": error}, status=error.status)
    return render(request, "decisions/detail.html#replay", {"replay": replay})


@page_requires(Scope.DECISIONS_READ)
@page_view("GET")
def decision_panel_partial(request: HtmxHttpRequest) -> HttpResponse:
    """The overview's decisions: per outcome over the picked range."""
    time_range = time_range_get(request.GET.get("range"))
    starts = time_range.starts(now=timezone.now())
    rows = selectors.decision_counts_over_time(since=starts[0], bucket=time_range.bucket)
    series = series_fill(rows, starts=starts)
    totals = sorted(((name, sum(counts)) for name, counts in series.items()), key=lambda t: -t[1])
    chart = charts.columns(
        title=f"Decisions by outcome, {time_range.label.lower()}",
        buckets=time_range.bucket_labels(starts),
        series=series,
        width=charts.PANEL_WIDTH,
    )
    context = {
        "chart": chart,
        "totals": totals,
        "total": sum(count for _name, count in totals),
        "time_range": time_range,
    }
    return render(request, "decisions/panel.html", context)


# --- Review queue ------------------------------------------------------------------------------


REVIEW_PARTIAL = "decisions/review.html#case_status"


class ResolveForm(forms.Form):
    resolution = forms.ChoiceField(choices=ReviewCase.Resolution.choices)
    note = forms.CharField(max_length=MAX_NOTE_LENGTH, strip=True)


@page_requires(Scope.REVIEWS_READ)
@page_view("GET")
def review_queue_page(request: HtmxHttpRequest) -> HttpResponse:
    ordering = "risk" if request.GET.get("ordering") == "risk" else "age"
    context = {
        "nav": "reviews",
        "ordering": ordering,
        "claim_minutes": settings.DECISIONS_REVIEW_CLAIM_MINUTES,
        **paginate(request, review_selectors.review_case_list(ordering=ordering)),
    }
    return render_page(request, "decisions/reviews.html", context, partial="results")


@page_requires(Scope.REVIEWS_READ)
@page_view("GET")
def review_panel_partial(request: HtmxHttpRequest) -> HttpResponse:
    size, oldest_seconds = review_selectors.review_queue_stats()
    context = {"size": size, "oldest": timedelta(seconds=round(oldest_seconds))}
    return render(request, "decisions/review_panel.html", context)


def _case_status_context(
    request: HtmxHttpRequest, case: ReviewCase, error: DomainError | None = None
) -> dict[str, object]:
    return {
        "case": case,
        "error": error,
        "claim_active": case.claim_active,
        "mine": case.claimed_by == client_scope(request.user),
        "may_review": request_may(request, Scope.REVIEWS_WRITE),
        "resolve_form": ResolveForm(),
    }


@page_requires(Scope.REVIEWS_READ)
@page_view("GET")
def review_case_page(request: HtmxHttpRequest, case_id: int) -> HttpResponse:
    case = review_selectors.review_case_get(case_id=case_id)
    decision = case.decision
    unmasked = privacy.reader_sees_pii(request.user, decision_ids=[decision.pk])
    record = review_selectors.decision_risk_record(decision=decision)
    context = {
        "nav": "reviews",
        **_case_status_context(request, case),
        "decision": decision,
        "payload": json.dumps(
            decision.event.payload if unmasked else features_mask(decision.event.payload or {}),
            indent=2,
            sort_keys=True,
            ensure_ascii=False,
        ),
        "drivers": privacy.drivers_shown(record.drivers if record else [], unmasked=unmasked),
        "reasons": decision.reasons if unmasked else privacy.reasons_masked(decision.reasons),
        "earlier": review_selectors.customer_earlier_decisions(decision=decision),
        "sms_messages": [
            privacy.message_shown(message, unmasked=unmasked)
            for message in selectors.decision_messages(decision=decision)
        ],
    }
    return render_page(request, "decisions/review.html", context)


@page_requires(Scope.REVIEWS_WRITE)
@page_view("POST")
def review_case_claim_partial(request: HtmxHttpRequest, case_id: int) -> HttpResponse:
    error = None
    try:
        services.review_case_claim(case_id=case_id, actor=request.user)
    except ReviewCaseConflict as failure:
        error = failure
    case = review_selectors.review_case_get(case_id=case_id)
    return render(request, REVIEW_PARTIAL, _case_status_context(request, case, error))


@page_requires(Scope.REVIEWS_WRITE)
@page_view("POST")
def review_case_resolve_partial(request: HtmxHttpRequest, case_id: int) -> HttpResponse:
    case = review_selectors.review_case_get(case_id=case_id)
    form = ResolveForm(request.POST)
    error: DomainError | None = None
    if form.is_valid():
        try:
            services.review_case_resolve(case_id=case_id, **form.cleaned_data, actor=request.user)
        except DomainError as failure:
            error = failure
        case = review_selectors.review_case_get(case_id=case_id)
    else:
        error = InvalidInput(
            "Choose approve or decline and write a note.",
            errors={
                field: [str(message) for message in messages]
                for field, messages in form.errors.items()
            },
        )
    return render(request, REVIEW_PARTIAL, _case_status_context(request, case, error))
