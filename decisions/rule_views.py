"""The rule editor's pages: the rules of an event type with their versions and hit counts, and
backtests of drafts with their progress and results. Admin stays the editor of rules; a
backtest started here calls the same service as admin's."""

from datetime import timedelta
from typing import Any

from django import forms
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django_htmx.http import HttpResponseClientRedirect

from core import charts
from core.access import Scope
from core.errors import DomainError
from core.forms import form_add_domain_error
from core.pages import HtmxHttpRequest, page_view, render_page, wants_partial
from core.permissions import page_requires, request_may
from core.timeseries import TIME_RANGES, series_fill, time_range_get
from decisions import rule_selectors, services
from decisions.exceptions import BacktestInProgress
from decisions.models import Backtest, RuleVersion

DEFAULT_WINDOW = timedelta(days=7)  # as admin's backtest form
LOCAL_INPUT = "%Y-%m-%dT%H:%M"  # what <input type="datetime-local"> sends and shows


def _datetime_input() -> forms.DateTimeInput:
    return forms.DateTimeInput(attrs={"type": "datetime-local"}, format=LOCAL_INPUT)


class BacktestRunForm(forms.Form):
    versions = forms.ModelMultipleChoiceField(
        queryset=RuleVersion.objects.none(),
        error_messages={
            "required": "Choose at least one draft version.",
            "invalid_choice": "Version %(value)s is not a draft (any more).",
            "invalid_pk_value": "“%(pk)s” names no version.",
        },
    )
    window_start = forms.DateTimeField(widget=_datetime_input(), label="From")
    window_end = forms.DateTimeField(widget=_datetime_input(), label="Until")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.busy_backtest_id: int | None = None  # the backtest that holds a chosen rule
        versions = self.fields["versions"]
        assert isinstance(versions, forms.ModelMultipleChoiceField)
        versions.queryset = rule_selectors.draft_versions()

    @classmethod
    def opened(cls, *, versions: list[str]) -> "BacktestRunForm":
        """The form as first shown: `versions` ticked, the last week as the window. The input
        shows minutes, so the end is the next whole minute: the window holds the events of the
        minute the page was opened in."""
        end = timezone.localtime().replace(second=0, microsecond=0) + timedelta(minutes=1)
        return cls(
            initial={"window_start": end - DEFAULT_WINDOW, "window_end": end, "versions": versions}
        )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        start, end = cleaned.get("window_start"), cleaned.get("window_end")
        if start and end and start >= end:
            self.add_error("window_end", "The window ends before it starts: choose a later end.")
        return cleaned

    def candidates(self) -> list[dict[str, Any]]:
        return [
            {"rule_key": version.rule.key, "version": version.number}
            for version in self.cleaned_data["versions"]
        ]


@page_requires(Scope.RULES_READ)
@page_view("GET")
def rules_index_page(request: HtmxHttpRequest) -> HttpResponse:
    context = {"nav": "rules", "event_types": rule_selectors.rule_event_types()}
    return render_page(request, "decisions/rules_index.html", context)


@page_requires(Scope.RULES_READ)
@page_view("GET")
def rules_page(request: HtmxHttpRequest, event_type: str) -> HttpResponse:
    """An event type's rules and their versions; each rule's hits over the picked range."""
    time_range = time_range_get(request.GET.get("range"))
    starts = time_range.starts(now=timezone.now())
    hits = rule_selectors.rule_hits_over_time(
        event_type=event_type, since=starts[0], bucket=time_range.bucket
    )
    buckets = time_range.bucket_labels(starts)
    rules = []
    for row in rule_selectors.rule_rows(event_type=event_type):
        series = series_fill(hits.get(row.rule.pk, []), starts=starts)
        title = f"Decisions {row.rule.key} decided, {time_range.label.lower()}"
        rules.append(
            {
                "row": row,
                "hits": sum(sum(counts) for counts in series.values()),
                "chart": charts.columns(title=title, buckets=buckets, series=series),
            }
        )
    may_backtest = request_may(request, Scope.BACKTESTS_WRITE)
    context = {
        "nav": "rules",
        "event_type": event_type,
        "rules": rules,
        "time_range": time_range,
        "time_ranges": TIME_RANGES.values(),
        "may_backtest": may_backtest,
    }
    if not wants_partial(request):  # outside the region a range swaps
        context["policy"] = rule_selectors.policy_for(event_type=event_type)
        if may_backtest:
            context["backtests"] = rule_selectors.backtest_list_recent(event_type=event_type)
    return render_page(request, "decisions/rules.html", context, partial="rules")


def _backtest_start(form: BacktestRunForm, *, actor: Any) -> Backtest | None:
    """The backtest a valid form asks for, through the service admin uses; or None, with the
    service's refusal on the form."""
    try:
        return services.backtest_create(
            candidates=form.candidates(),
            window_start=form.cleaned_data["window_start"],
            window_end=form.cleaned_data["window_end"],
            actor=actor,
        )
    except BacktestInProgress as error:
        form.add_error(None, error.detail)  # it names the busy backtest, linked on the page
        form.busy_backtest_id = error.extra.get("backtest_id")
    except DomainError as error:
        form_add_domain_error(form, error)
    return None


@page_requires(Scope.BACKTESTS_WRITE)
@page_view("GET", "POST")
def backtest_new_page(request: HtmxHttpRequest) -> HttpResponse:
    """Choose drafts and a window, run: small backtests finish in the request, larger ones in
    the worker; either way the backtest's page follows."""
    if request.method == "POST":
        form = BacktestRunForm(request.POST)
        backtest = _backtest_start(form, actor=request.user) if form.is_valid() else None
        if backtest is not None:
            url = reverse("rules:backtest", args=[backtest.pk])
            # An htmx post swaps only the form: the browser itself goes to the backtest.
            return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    else:
        form = BacktestRunForm.opened(versions=request.GET.getlist("version"))
    event_type = request.GET.get("event_type") or None
    context = {
        "nav": "rules",
        "form": form,
        "event_type": event_type,
        "drafts": rule_selectors.draft_versions(event_type=event_type),
        "chosen": {str(value) for value in form["versions"].value() or []},
    }
    status = 400 if form.is_bound else 200
    return render_page(
        request, "decisions/backtest_new.html", context, partial="form", status=status
    )


@page_requires(Scope.BACKTESTS_WRITE)
@page_view("GET")
def backtest_page(request: HtmxHttpRequest, backtest_id: int) -> HttpResponse:
    """A backtest's progress, polled over htmx while it runs, then what would change."""
    backtest = rule_selectors.backtest_get(backtest_id=backtest_id)
    transitions = backtest.results.get("transitions", []) if backtest.results else []
    decision_ids = rule_selectors.decision_ids_for_events(
        event_ids=[event_id for t in transitions for event_id in t["example_event_ids"]]
    )
    context = {
        "nav": "rules",
        "backtest": backtest,
        "running": backtest.status in (Backtest.Status.QUEUED, Backtest.Status.RUNNING),
        "percent": round(100 * backtest.progress),
        "transitions": [
            {
                **transition,
                "examples": [
                    (event_id, decision_ids.get(event_id))
                    for event_id in transition["example_event_ids"]
                ],
            }
            for transition in transitions
        ],
    }
    return render_page(request, "decisions/backtest.html", context, partial="progress")
