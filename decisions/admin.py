"""Staff edit rules, lists and policies here; every save goes through a service (and the audit)."""

import difflib
import json
from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from core.errors import DomainError
from core.expressions import ExpressionError
from decisions import selectors, services
from decisions.models import (
    Backtest,
    Decision,
    NamedList,
    Policy,
    Rule,
    RuleVersion,
)
from decisions.views import HtmxHttpRequest

TRANSITIONS = {
    "publish": services.rule_version_publish,
    "shadow": services.rule_version_shadow,
    "retire": services.rule_version_retire,
    "rollback": services.rule_version_rollback,
}


def _changes(before: Any, after: Any) -> tuple[Any, Any]:
    """Only the keys an update changed, so a status flip does not repeat the whole version."""
    if isinstance(before, dict) and isinstance(after, dict):
        keys = sorted(key for key in {*before, *after} if before.get(key) != after.get(key))
        return {key: before.get(key) for key in keys}, {key: after.get(key) for key in keys}
    return before, after


def _audit_table(entries: Any) -> str:
    rows = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td>"
        "<td><code>{}</code></td></tr>",
        (
            (
                entry.occurred_at.strftime("%Y-%m-%d %H:%M:%S"),
                entry.actor_label,
                entry.action,
                entry.target_id,
                json.dumps(before, sort_keys=True) if before else "",
                json.dumps(after, sort_keys=True) if after else "",
            )
            for entry in entries
            for before, after in [_changes(entry.before, entry.after)]
        ),
    )
    return format_html(
        '<table class="audit-trail"><thead><tr><th>When</th><th>Who</th><th>Action</th>'
        "<th>Target</th><th>Before</th><th>After</th></tr></thead><tbody>{}</tbody></table>",
        rows or format_html('<tr><td colspan="6">No entries.</td></tr>'),
    )


VERSION_COLUMNS = (
    "number",
    "status",
    "priority",
    "outcome",
    "condition",
    "change_note",
    "author_label",
    "created_at",
    "lifecycle",
)


class RuleVersionInline(admin.TabularInline):
    """The version history, newest first, with the lifecycle buttons of each version."""

    model = RuleVersion
    extra = 0
    can_delete = False
    ordering = ["-number"]
    fields = VERSION_COLUMNS
    readonly_fields = VERSION_COLUMNS

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Actions")
    def lifecycle(self, version: RuleVersion) -> str:
        allowed = {
            RuleVersion.Status.DRAFT: ["publish", "shadow", "retire"],
            RuleVersion.Status.SHADOW: ["publish", "retire"],
            RuleVersion.Status.PUBLISHED: ["retire"],
            RuleVersion.Status.RETIRED: ["rollback"],
        }[RuleVersion.Status(version.status)]
        backtest = ""
        if version.status != RuleVersion.Status.RETIRED:
            backtest = format_html(
                ' <a class="button" href="{}" data-testid="backtest-{}">Backtest</a>',
                reverse("admin:decisions_rule_backtest", args=[version.rule_id, version.number]),
                version.number,
            )
        # Buttons of the surrounding change form, posting (with its CSRF token) elsewhere.
        buttons = format_html_join(
            " ",
            '<button type="submit" class="button" formaction="{}" formmethod="post" '
            'data-testid="{}-{}">{}</button>',
            (
                (
                    reverse(
                        "admin:decisions_rule_transition",
                        args=[version.rule_id, version.number, transition],
                    ),
                    transition,
                    version.number,
                    transition.title(),
                )
                for transition in allowed
            ),
        )
        return format_html("{}{}", buttons, backtest)


class RuleForm(forms.ModelForm):
    class Meta:
        model = Rule
        fields = ["key", "name", "event_type", "description"]


class BacktestForm(forms.Form):
    window_start = forms.DateTimeField()
    window_end = forms.DateTimeField()


class RuleVersionDraftForm(forms.Form):
    condition = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "cols": 80}),
        max_length=4000,
        strip=False,
        help_text="CEL over event, event_type, now, lists.<name> and risk.score / risk.label.",
    )
    outcome = forms.CharField(max_length=32)
    priority = forms.IntegerField(min_value=-1_000_000, max_value=1_000_000)
    actions = forms.JSONField(
        required=False,
        initial=list,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        help_text='e.g. [{"type": "sms", "template": "We are reviewing.", "to": "event.phone"}]',
    )
    effective_from = forms.DateTimeField(required=False)
    effective_until = forms.DateTimeField(required=False)
    change_note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2, "cols": 80}), required=False, max_length=2000
    )


@admin.register(Rule)
class RuleAdmin(admin.ModelAdmin):
    form = RuleForm
    list_display = ["key", "name", "event_type", "published", "shadow"]
    list_filter = ["event_type"]
    search_fields = ["key", "name", "description"]
    inlines = [RuleVersionInline]

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).prefetch_related("versions")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return []
        return ["key", "event_type", "version_tools", "audit_trail"]

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return [(None, {"fields": ["key", "name", "event_type", "description"]})]
        return [
            (None, {"fields": ["key", "event_type", "name", "description", "version_tools"]}),
            ("Audit trail", {"classes": ["collapse"], "fields": ["audit_trail"]}),
        ]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # versions are history: retire instead

    @admin.display(description="Published")
    def published(self, rule: Rule) -> int | None:
        return rule.number_with(RuleVersion.Status.PUBLISHED)

    @admin.display(description="Shadow")
    def shadow(self, rule: Rule) -> int | None:
        return rule.number_with(RuleVersion.Status.SHADOW)

    @admin.display(description="Versions")
    def version_tools(self, rule: Rule) -> str:
        return format_html(
            '<a class="button" href="{}" data-testid="new-draft">New draft version</a> '
            '<a class="button" href="{}">Compare versions</a>',
            reverse("admin:decisions_rule_new_version", args=[rule.pk]),
            reverse("admin:decisions_rule_diff", args=[rule.pk]),
        )

    @admin.display(description="Audit trail")
    def audit_trail(self, rule: Rule) -> str:
        return _audit_table(selectors.audit_entries_for_rule(rule=rule))

    def save_model(self, request: HttpRequest, obj: Rule, form: Any, change: bool) -> None:
        if change:
            services.rule_update(
                rule=obj, name=obj.name, description=obj.description, actor=request.user
            )
            return
        created = services.rule_create(
            key=obj.key,
            name=obj.name,
            event_type=obj.event_type,
            description=obj.description,
            actor=request.user,
        )
        obj.pk = created.pk

    def get_urls(self) -> list:
        return [
            path(
                "<int:rule_id>/versions/new/",
                self.admin_site.admin_view(self.new_version_view),
                name="decisions_rule_new_version",
            ),
            path(
                "<int:rule_id>/versions/<int:number>/backtest/",
                self.admin_site.admin_view(self.backtest_view),
                name="decisions_rule_backtest",
            ),
            path(
                "<int:rule_id>/versions/<int:number>/<str:transition>/",
                self.admin_site.admin_view(self.transition_view),
                name="decisions_rule_transition",
            ),
            path(
                "<int:rule_id>/diff/",
                self.admin_site.admin_view(self.diff_view),
                name="decisions_rule_diff",
            ),
            *super().get_urls(),
        ]

    def _change_url(self, rule: Rule) -> str:
        return reverse("admin:decisions_rule_change", args=[rule.pk])

    def new_version_view(self, request: HttpRequest, rule_id: int) -> HttpResponse:
        rule = get_object_or_404(Rule, pk=rule_id)
        if not self.has_change_permission(request, rule):
            return HttpResponse(status=403)
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
                for name, problems in (error.errors or {"__all__": [error.detail]}).items():
                    field = name.split("[")[0].split(".")[0]
                    form.add_error(field if field in form.fields else None, problems)
            else:
                messages.success(request, f"Draft version {version.number} created.")
                return HttpResponseRedirect(self._change_url(rule))
        return render(
            request,
            "decisions/admin/new_version.html",
            {
                **self.admin_site.each_context(request),
                "title": f"New draft version of {rule.key}",
                "rule": rule,
                "form": form,
                "opts": self.model._meta,
                "change_url": self._change_url(rule),
            },
        )

    def transition_view(
        self, request: HttpRequest, rule_id: int, number: int, transition: str
    ) -> HttpResponse:
        rule = get_object_or_404(Rule, pk=rule_id)
        version = get_object_or_404(RuleVersion, rule=rule, number=number)
        if request.method != "POST" or transition not in TRANSITIONS:
            return HttpResponse(status=405)
        if not self.has_change_permission(request, rule):
            return HttpResponse(status=403)
        try:
            result = TRANSITIONS[transition](version=version, actor=request.user)
        except DomainError as error:
            messages.error(request, error.detail)
        else:
            messages.success(
                request, f"{transition.title()}: version {result.number} is now {result.status}."
            )
        return HttpResponseRedirect(self._change_url(rule))

    def backtest_view(self, request: HttpRequest, rule_id: int, number: int) -> HttpResponse:
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
        return render(
            request,
            "decisions/admin/backtest_form.html",
            {
                **self.admin_site.each_context(request),
                "title": f"Backtest {rule.key} version {version.number}",
                "rule": rule,
                "version": version,
                "form": form,
                "opts": self.model._meta,
                "change_url": self._change_url(rule),
            },
        )

    def diff_view(self, request: HttpRequest, rule_id: int) -> HttpResponse:
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
            table = difflib.HtmlDiff(wrapcolumn=70).make_table(
                _version_lines(by_number[left]),
                _version_lines(by_number[right]),
                fromdesc=f"version {left} ({by_number[left].status})",
                todesc=f"version {right} ({by_number[right].status})",
            )
        return render(
            request,
            "decisions/admin/diff.html",
            {
                **self.admin_site.each_context(request),
                "title": f"Compare versions of {rule.key}",
                "rule": rule,
                "numbers": numbers,
                "left": left,
                "right": right,
                "diff_table": table,
                "opts": self.model._meta,
                "change_url": self._change_url(rule),
            },
        )


def _version_lines(version: RuleVersion) -> list[str]:
    content = {**version.content, "change_note": version.change_note}
    lines: list[str] = []
    for name, value in content.items():
        text = value if isinstance(value, str) else json.dumps(value, indent=2, sort_keys=True)
        lines.extend(f"{name}: {line}" for line in str(text).splitlines() or [""])
    return lines


@admin.register(RuleVersion)
class RuleVersionAdmin(admin.ModelAdmin):
    """Read-only: versions are immutable; the rule page holds their lifecycle buttons."""

    list_display = ["rule", "number", "status", "priority", "outcome", "created_at"]
    list_filter = ["status", "rule__event_type"]
    search_fields = ["rule__key", "condition"]
    list_select_related = ["rule"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [field.name for field in RuleVersion._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class NamedListForm(forms.ModelForm):
    values = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 10, "cols": 40}),
        required=False,
        help_text="One value per line.",
    )

    class Meta:
        model = NamedList
        fields = ["name", "description", "value_type"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["values"].initial = "\n".join(
                self.instance.items.values_list("value", flat=True)
            )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        value_type = cleaned.get("value_type") or NamedList.ValueType.STRING
        problems = []
        for number, line in enumerate((cleaned.get("values") or "").splitlines(), start=1):
            value = line.strip()
            if not value:
                continue
            try:
                selectors.typed_list_value(value, value_type)
            except ValueError:
                problems.append(f"Line {number}: {value!r} is not a valid {value_type}.")
            if len(value) > 200:
                problems.append(f"Line {number}: longer than 200 characters.")
        if problems:
            raise ValidationError({"values": problems})
        return cleaned


@admin.register(NamedList)
class NamedListAdmin(admin.ModelAdmin):
    form = NamedListForm
    list_display = ["name", "value_type", "version", "item_count", "updated_at"]
    search_fields = ["name", "description", "items__value"]

    def get_queryset(self, request: HttpRequest) -> Any:
        from django.db.models import Count

        return super().get_queryset(request).annotate(item_count=Count("items"))

    @admin.display(description="Values", ordering="item_count")
    def item_count(self, named_list: Any) -> int:
        return named_list.item_count

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ["name", "version", "audit_trail"] if obj else ["version"]

    @admin.display(description="Audit trail")
    def audit_trail(self, named_list: NamedList) -> str:
        return _audit_table(
            selectors.audit_entries_for(target_type="named_list", target_id=named_list.name)
        )

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # rules may read it; empty it instead (audited)

    def save_model(self, request: HttpRequest, obj: NamedList, form: Any, change: bool) -> None:
        saved = services.named_list_save(
            name=obj.name,
            description=obj.description,
            value_type=obj.value_type,
            values=(form.cleaned_data.get("values") or "").splitlines(),
            actor=request.user,
        )
        obj.pk = saved.pk


class PolicyForm(forms.ModelForm):
    outcome_precedence = forms.CharField(
        required=False,
        help_text="Most severe first, comma separated, e.g. decline, review, approve.",
    )

    class Meta:
        model = Policy
        fields = ["event_type", "strategy", "default_outcome"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["outcome_precedence"].initial = ", ".join(
                self.instance.outcome_precedence or []
            )

    def clean_outcome_precedence(self) -> list[str]:
        raw = self.cleaned_data.get("outcome_precedence") or ""
        outcomes = [part.strip() for part in raw.split(",") if part.strip()]
        if len(set(outcomes)) != len(outcomes):
            raise ValidationError("Each outcome once.")
        return outcomes


@admin.register(Policy)
class PolicyAdmin(admin.ModelAdmin):
    form = PolicyForm
    list_display = ["event_type", "strategy", "default_outcome", "precedence", "warnings"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ["event_type", "static_check", "audit_trail"] if obj else []

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Precedence")
    def precedence(self, policy: Policy) -> str:
        return " > ".join(policy.outcome_precedence or [])

    @admin.display(description="Static check")
    def warnings(self, policy: Policy) -> int:
        return len(selectors.policy_static_check(event_type=policy.event_type))

    @admin.display(description="Static check of the published rules")
    def static_check(self, policy: Policy) -> str:
        found = selectors.policy_static_check(event_type=policy.event_type)
        if not found:
            return "No problems found."
        return format_html(
            '<ul class="static-check">{}</ul>',
            format_html_join(
                "", '<li data-code="{}">{}</li>', ((w.code, w.message) for w in found)
            ),
        )

    @admin.display(description="Audit trail")
    def audit_trail(self, policy: Policy) -> str:
        return _audit_table(
            selectors.audit_entries_for(target_type="policy", target_id=policy.event_type)
        )

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        policy = Policy.objects.filter(pk=object_id).first()
        if request.method == "GET" and policy is not None:
            for warning in selectors.policy_static_check(event_type=policy.event_type):
                messages.warning(request, warning.message)
        return super().change_view(request, object_id, form_url, extra_context)

    def save_model(self, request: HttpRequest, obj: Policy, form: Any, change: bool) -> None:
        saved = services.policy_save(
            event_type=obj.event_type,
            strategy=obj.strategy,
            default_outcome=obj.default_outcome,
            outcome_precedence=form.cleaned_data.get("outcome_precedence") or [],
            actor=request.user,
        )
        obj.pk = saved.pk


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Decision)
class DecisionAdmin(ReadOnlyAdmin):
    list_display = ["id", "event_type", "outcome", "matched_version", "engine_us", "decided_at"]
    list_filter = ["outcome", "event_type"]
    list_select_related = ["matched_version__rule"]
    date_hierarchy = "decided_at"


@admin.register(Backtest)
class BacktestAdmin(ReadOnlyAdmin):
    list_display = ["id", "status", "event_types", "window_start", "window_end", "processed"]
    list_filter = ["status"]

    def get_urls(self) -> list:
        return [
            path(
                "<int:backtest_id>/progress/",
                self.admin_site.admin_view(self.progress_view),
                name="decisions_backtest_progress",
            ),
            *super().get_urls(),
        ]

    def progress_view(self, request: HtmxHttpRequest, backtest_id: int) -> HttpResponse:
        """Results, or progress that refreshes itself over HTMX while a worker runs it."""
        backtest = get_object_or_404(Backtest, pk=backtest_id)
        template = "decisions/admin/backtest_progress.html"
        context = {
            **self.admin_site.each_context(request),
            "title": f"Backtest {backtest.pk}",
            "backtest": backtest,
            "running": backtest.status in (Backtest.Status.QUEUED, Backtest.Status.RUNNING),
            "percent": round(100 * backtest.progress),
            "opts": self.model._meta,
        }
        return render(request, f"{template}#progress" if request.htmx else template, context)
