"""The admin's own pages for rules and backtests: a new draft version, lifecycle transitions,
a backtest of one version and its progress, and a diff of two versions.

`admin.py` mounts them with `rule_urls` and `backtest_urls`; each view checks the permission
its action needs (rules:read to compare, rules:write to draft and move versions, rules:approve to
answer an approval request, backtests:write to run and follow backtests) and answers 403 without.
"""

import difflib
import json
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import URLPattern, path, reverse
from django.utils import timezone

from core.access import PeopleOnly, Scope
from core.errors import DomainError
from core.expressions import ExpressionError
from core.forms import form_add_domain_error
from core.pages import HtmxHttpRequest
from core.permissions import request_may
from decisions import services
from decisions.models import Backtest, Rule, RuleVersion

# Each button of a version: the service it calls and the permission it needs.
TRANSITIONS: dict[str, tuple[Callable[..., Any], str]] = {
    "publish": (services.rule_version_publish, Scope.RULES_WRITE),
    "shadow": (services.rule_version_shadow, Scope.RULES_WRITE),
    "retire": (services.rule_version_retire, Scope.RULES_WRITE),
    "rollback": (services.rule_version_rollback, Scope.RULES_WRITE),
    "request-approval": (services.rule_version_approval_request, Scope.RULES_WRITE),
    "approve": (services.rule_version_approve, PeopleOnly.RULES_APPROVE),
    "reject": (services.rule_version_reject, PeopleOnly.RULES_APPROVE),
}
APPROVAL_MESSAGES = {
    "request-approval": "Approval of version {number} requested.",
    "approve": "Version {number} approved: it can be published now.",
    "reject": "Version {number} rejected.",
}


def permission_check(request: HttpRequest, permission: str) -> None:
    """403 (Django's PermissionDenied) for a staff member whose roles lack `permission`."""
    if not request_may(request, permission):
        raise PermissionDenied(f"This needs the {permission} permission.")


class RuleVersionDraftForm(forms.Form):
    condition = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "cols": 80}),
        max_length=4000,
        strip=False,
        help_text="CEL over event, event_type, now, lists.<name>, risk.score / risk.label, "
        "velocity.<name> (the policy's aggregates) and similar.count / .declined_share / "
        ".mean_score.",
    )
    outcome = forms.CharField(max_length=32)
    priority = forms.IntegerField(min_value=-1_000_000, max_value=1_000_000)
    actions = forms.JSONField(
        required=False,
        initial=list,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        help_text=(
            'e.g. [{"type": "sms", "template": "loan-under-review", "to": "event.phone"}]: '
            "template is the key of an approved SMS template"
        ),
    )
    effective_from = forms.DateTimeField(required=False)
    effective_until = forms.DateTimeField(required=False)
    change_note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2, "cols": 80}), required=False, max_length=2000
    )


class BacktestForm(forms.Form):
    window_start = forms.DateTimeField(
        required=False, help_text="Empty: 30 days before the end. At most 366 days."
    )
    window_end = forms.DateTimeField(required=False, help_text="Empty: now.")


def rule_change_url(rule: Rule) -> str:
    return reverse("admin:decisions_rule_change", args=[rule.pk])


def render_rule_page(
    request: HttpRequest,
    model_admin: admin.ModelAdmin,
    template: str,
    *,
    rule: Rule,
    title: str,
    **context: Any,
) -> HttpResponse:
    """An admin page about one rule: the admin's chrome, breadcrumbs back to the rule."""
    return render(
        request,
        f"decisions/admin/{template}",
        {
            **model_admin.admin_site.each_context(request),
            "title": title,
            "rule": rule,
            "opts": model_admin.model._meta,
            "change_url": rule_change_url(rule),
            **context,
        },
    )


def rule_version_new(
    request: HttpRequest, *, model_admin: admin.ModelAdmin, rule_id: int
) -> HttpResponse:
    """A draft version, prefilled from the latest one; CEL errors are shown at their position."""
    permission_check(request, Scope.RULES_WRITE)
    rule = get_object_or_404(Rule, pk=rule_id)
    latest = rule.versions.order_by("-number").first()
    initial = (
        {
            "condition": latest.condition,
            "outcome": latest.outcome,
            "priority": latest.priority,
            "actions": latest.actions,
        }
        if latest
        else {"priority": 100, "actions": []}
    )
    form = RuleVersionDraftForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            version = services.rule_version_create(
                rule=rule, **form.cleaned_data, actor=request.user
            )
        except ExpressionError as error:
            where = f"Line {error.line}, column {error.column}: " if error.line else ""
            form.add_error("condition", f"{where}{error.detail}")
        except DomainError as error:
            form_add_domain_error(form, error)
        else:
            messages.success(request, f"Draft version {version.number} created.")
            return HttpResponseRedirect(rule_change_url(rule))
    return render_rule_page(
        request,
        model_admin,
        "new_version.html",
        rule=rule,
        title=f"New draft version of {rule.key}",
        form=form,
    )


def rule_version_transition(
    request: HttpRequest,
    *,
    model_admin: admin.ModelAdmin,
    rule_id: int,
    number: int,
    transition: str,
) -> HttpResponse:
    """Publish, shadow, retire or roll back one version, or request, approve or reject its
    approval (POST), then back to the rule."""
    if not (
        request_may(request, Scope.RULES_WRITE) or request_may(request, PeopleOnly.RULES_APPROVE)
    ):
        raise PermissionDenied("This needs the rules:write or rules:approve permission.")
    if request.method != "POST" or transition not in TRANSITIONS:
        return HttpResponse(status=405)
    change, permission = TRANSITIONS[transition]
    permission_check(request, permission)
    rule = get_object_or_404(Rule, pk=rule_id)
    version = get_object_or_404(RuleVersion, rule=rule, number=number)
    try:
        result = change(version=version, actor=request.user)
    except DomainError as error:
        messages.error(request, error.detail)
    else:
        if transition in APPROVAL_MESSAGES:
            messages.success(request, APPROVAL_MESSAGES[transition].format(number=number))
        else:
            messages.success(
                request, f"{transition.title()}: version {result.number} is now {result.status}."
            )
    return HttpResponseRedirect(rule_change_url(rule))


def rule_version_backtest(
    request: HttpRequest, *, model_admin: admin.ModelAdmin, rule_id: int, number: int
) -> HttpResponse:
    """Backtest one version over a window (the last week by default), then show its progress."""
    permission_check(request, Scope.BACKTESTS_WRITE)
    rule = get_object_or_404(Rule, pk=rule_id)
    version = get_object_or_404(RuleVersion, rule=rule, number=number)
    now = timezone.now()
    form = BacktestForm(
        request.POST or None,
        initial={"window_start": now - timedelta(days=7), "window_end": now},
    )
    if request.method == "POST" and form.is_valid():
        try:
            backtest = services.backtest_create(
                candidates=[{"rule_key": rule.key, "version": version.number}],
                **form.cleaned_data,
                actor=request.user,
            )
        except DomainError as error:
            form.add_error(None, error.detail)
        else:
            return HttpResponseRedirect(
                reverse("admin:decisions_backtest_progress", args=[backtest.pk])
            )
    return render_rule_page(
        request,
        model_admin,
        "backtest_form.html",
        rule=rule,
        title=f"Backtest {rule.key} version {version.number}",
        version=version,
        form=form,
    )


def _version_lines(version: RuleVersion) -> list[str]:
    content = {**version.content, "change_note": version.change_note}
    lines: list[str] = []
    for name, value in content.items():
        text = value if isinstance(value, str) else json.dumps(value, indent=2, sort_keys=True)
        lines.extend(f"{name}: {line}" for line in str(text).splitlines() or [""])
    return lines


def rule_diff(request: HttpRequest, *, model_admin: admin.ModelAdmin, rule_id: int) -> HttpResponse:
    """Any two versions side by side (`?a=&b=`; the last two by default)."""
    permission_check(request, Scope.RULES_READ)
    rule = get_object_or_404(Rule, pk=rule_id)
    versions = list(rule.versions.order_by("number"))
    numbers = [version.number for version in versions]
    by_number = {version.number: version for version in versions}

    def chosen(name: str, default: int | None) -> int | None:
        try:
            value = int(request.GET.get(name, ""))
        except ValueError:
            return default
        return value if value in by_number else default

    left = chosen("a", numbers[-2] if len(numbers) > 1 else (numbers[0] if numbers else None))
    right = chosen("b", numbers[-1] if numbers else None)
    table = ""
    if left is not None and right is not None:
        # difflib writes the table's HTML itself, escaping the versions' text.
        table = difflib.HtmlDiff(wrapcolumn=70).make_table(
            _version_lines(by_number[left]),
            _version_lines(by_number[right]),
            fromdesc=f"version {left} ({by_number[left].status})",
            todesc=f"version {right} ({by_number[right].status})",
        )
    return render_rule_page(
        request,
        model_admin,
        "diff.html",
        rule=rule,
        title=f"Compare versions of {rule.key}",
        numbers=numbers,
        left=left,
        right=right,
        diff_table=table,
    )


def backtest_progress(
    request: HtmxHttpRequest, *, model_admin: admin.ModelAdmin, backtest_id: int
) -> HttpResponse:
    """Results, or progress that refreshes itself over HTMX while a worker runs it."""
    permission_check(request, Scope.BACKTESTS_WRITE)
    backtest = get_object_or_404(Backtest, pk=backtest_id)
    template = "decisions/admin/backtest_progress.html"
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"Backtest {backtest.pk}",
        "backtest": backtest,
        "running": backtest.status in (Backtest.Status.QUEUED, Backtest.Status.RUNNING),
        "percent": round(100 * backtest.progress),
        "opts": model_admin.model._meta,
    }
    return render(request, f"{template}#progress" if request.htmx else template, context)


def admin_path(
    route: str,
    view: Callable[..., HttpResponse],
    model_admin: admin.ModelAdmin,
    name: str,
    *,
    permission: str,
) -> URLPattern:
    """An admin page that declares what it needs (read by the security matrix); the view
    checks it, or the finer permission of the action it is asked for."""
    page = partial(view, model_admin=model_admin)
    page.required_permission = permission  # type: ignore[attr-defined]
    return path(route, model_admin.admin_site.admin_view(page), name=name)


def rule_urls(model_admin: admin.ModelAdmin) -> list[URLPattern]:
    """The rule admin's own pages, before its change page's catch-all."""
    return [
        admin_path(
            "<int:rule_id>/versions/new/",
            rule_version_new,
            model_admin,
            "decisions_rule_new_version",
            permission=Scope.RULES_WRITE,
        ),
        admin_path(
            "<int:rule_id>/versions/<int:number>/backtest/",
            rule_version_backtest,
            model_admin,
            "decisions_rule_backtest",
            permission=Scope.BACKTESTS_WRITE,
        ),
        admin_path(
            "<int:rule_id>/versions/<int:number>/<str:transition>/",
            rule_version_transition,
            model_admin,
            "decisions_rule_transition",
            # publish, shadow, retire, rollback, request: rules:write; approve, reject: approver
            permission=f"{Scope.RULES_WRITE} or {PeopleOnly.RULES_APPROVE}",
        ),
        admin_path(
            "<int:rule_id>/diff/",
            rule_diff,
            model_admin,
            "decisions_rule_diff",
            permission=Scope.RULES_READ,
        ),
    ]


def backtest_urls(model_admin: admin.ModelAdmin) -> list[URLPattern]:
    return [
        admin_path(
            "<int:backtest_id>/progress/",
            backtest_progress,
            model_admin,
            "decisions_backtest_progress",
            permission=Scope.BACKTESTS_WRITE,
        )
    ]
