"""Staff edit rules, lists and policies here; every save goes through a service (and the audit).

The admin's own pages (new draft, transitions, backtests, diff) live in `admin_views`; the HTML
of the read-only fields in templates/decisions/admin/. Near 500 lines: six ModelAdmins (rules,
versions, lists, policies, decisions, backtests) with their forms, inlines and permissions.
"""

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.urls import URLPattern
from django.utils.safestring import SafeString

from core.access import PeopleOnly, Scope
from core.admin_access import PermissionAdminMixin, ReadOnlyAdminMixin
from core.errors import DomainError
from core.forms import form_add_domain_error, validation_error_from
from core.models import AuditEntry
from core.permissions import request_may
from decisions import admin_rollouts, admin_views, privacy, selectors, services
from decisions.models import (
    Backtest,
    Decision,
    NamedList,
    Policy,
    Rule,
    RuleVersion,
    RuleVersionApproval,
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
    "approval",
    "lifecycle",
)
# The transitions each status allows, in the order of their buttons.
LIFECYCLE = {
    RuleVersion.Status.DRAFT: ["publish", "shadow", "retire"],
    RuleVersion.Status.SHADOW: ["publish", "retire"],
    RuleVersion.Status.PUBLISHED: ["retire"],
    RuleVersion.Status.SCHEDULED: ["retire"],
    RuleVersion.Status.CANARY: ["publish", "retire"],
    RuleVersion.Status.RETIRED: ["rollback"],
}
# The statuses whose versions may run as a canary (or change a running canary's share).
CANARY_SOURCES = (RuleVersion.Status.DRAFT, RuleVersion.Status.SHADOW, RuleVersion.Status.CANARY)


def _changes(before: Any, after: Any) -> tuple[Any, Any]:
    """Only the keys an update changed, so a status flip does not repeat the whole version."""
    if isinstance(before, dict) and isinstance(after, dict):
        keys = sorted(key for key in {*before, *after} if before.get(key) != after.get(key))
        return {key: before.get(key) for key in keys}, {key: after.get(key) for key in keys}
    return before, after


def _audit_table(entries: QuerySet[AuditEntry]) -> SafeString:
    rows = []
    for entry in entries:
        before, after = _changes(entry.before, entry.after)
        rows.append(
            {
                "entry": entry,
                "before": json.dumps(before, sort_keys=True) if before else "",
                "after": json.dumps(after, sort_keys=True) if after else "",
            }
        )
    return render_to_string("decisions/admin/audit_trail.html", {"rows": rows})


class AuditTrailMixin:
    """A read-only `audit_trail` field: the entries about this object, newest first."""

    audit_target_type = ""
    audit_target_field = ""  # the field whose value the entries name as their target id

    def audit_entries(self, obj: Any) -> QuerySet[AuditEntry]:
        return selectors.audit_entries_for(
            target_type=self.audit_target_type,
            target_id=str(getattr(obj, self.audit_target_field)),
        )

    @admin.display(description="Audit trail")
    def audit_trail(self, obj: Any) -> SafeString:
        return _audit_table(self.audit_entries(obj))


def _open_approval(version: RuleVersion) -> RuleVersionApproval | None:
    # The prefetched approvals, newest first: the latest one, if it still awaits an answer.
    latest = next(iter(version.approvals.all()), None)
    return latest if latest and latest.status == RuleVersionApproval.Status.REQUESTED else None


class RuleVersionInline(ReadOnlyAdminMixin, PermissionAdminMixin, admin.TabularInline):
    """The version history, newest first, with the buttons the viewer may use on each version.

    RuleAdmin makes one per request and hands it the request (`viewer`) and whether the event
    type's policy asks for approval, so the buttons can follow the viewer's permissions.
    """

    model = RuleVersion
    view_permission = Scope.RULES_READ
    extra = 0
    can_delete = False
    ordering = ["-number"]
    fields = VERSION_COLUMNS
    readonly_fields = VERSION_COLUMNS
    viewer: HttpRequest | None = None
    approval_required = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[RuleVersion]:
        return super().get_queryset(request).prefetch_related("approvals")

    @admin.display(description="Approval")
    def approval(self, version: RuleVersion) -> str:
        latest = next(iter(version.approvals.all()), None)
        if latest is None:
            return "—"
        who = latest.decided_by_label or latest.requested_by_label
        return f"{latest.status} ({who})"

    def transitions_for(self, version: RuleVersion) -> list[str]:
        """The buttons this viewer may press on this version."""
        request = self.viewer
        if request is None:
            return []
        status = RuleVersion.Status(version.status)
        shown: list[str] = []
        if request_may(request, Scope.RULES_WRITE):
            shown.extend(LIFECYCLE[status])
            latest = next(iter(version.approvals.all()), None)
            if (
                self.approval_required
                and status in services.APPROVAL_OPEN_STATUSES
                and (latest is None or latest.status == RuleVersionApproval.Status.REJECTED)
            ):
                shown.append("request-approval")
        open_request = _open_approval(version)
        if (
            open_request is not None
            and request_may(request, PeopleOnly.RULES_APPROVE)
            and version.author_id != getattr(request.user, "pk", None)
        ):
            shown.extend(["approve", "reject"])
        return shown

    @admin.display(description="Actions")
    def lifecycle(self, version: RuleVersion) -> SafeString:
        request = self.viewer
        return render_to_string(
            "decisions/admin/version_actions.html",
            {
                "version": version,
                "transitions": self.transitions_for(version),
                "may_canary": request is not None
                and request_may(request, Scope.RULES_WRITE)
                and version.status in CANARY_SOURCES,
                "may_backtest": request is not None and request_may(request, Scope.BACKTESTS_WRITE),
            },
        )


class RuleForm(forms.ModelForm):
    class Meta:
        model = Rule
        fields = ["key", "name", "event_type", "description"]


@admin.register(Rule)
class RuleAdmin(PermissionAdminMixin, AuditTrailMixin, admin.ModelAdmin):
    view_permission = Scope.RULES_READ
    change_permission = Scope.RULES_WRITE
    form = RuleForm
    list_display = ["key", "name", "event_type", "published", "shadow", "scheduled", "canary"]
    list_filter = ["event_type"]
    search_fields = ["key", "name", "description"]
    inlines = [RuleVersionInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Rule]:
        return super().get_queryset(request).prefetch_related("versions")

    def get_inline_instances(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        # Fresh instances per request (Django's own), so the request can ride along safely.
        inlines = super().get_inline_instances(request, obj)
        required = obj is not None and services.approval_required_for(event_type=obj.event_type)
        for inline in inlines:
            if isinstance(inline, RuleVersionInline):
                inline.viewer = request
                inline.approval_required = required
        return inlines

    def _tools_field(self, request: HttpRequest) -> str:
        # The "new draft" button only for those who may write one.
        return "version_tools" if self.has_change_permission(request) else "version_compare"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return []
        return [
            "key",
            "event_type",
            self._tools_field(request),
            "canary_comparison",
            "audit_trail",
        ]

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return [(None, {"fields": ["key", "name", "event_type", "description"]})]
        tools = self._tools_field(request)
        return [
            (None, {"fields": ["key", "event_type", "name", "description", tools]}),
            ("Canary against control", {"fields": ["canary_comparison"]}),
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

    @admin.display(description="Scheduled")
    def scheduled(self, rule: Rule) -> int | None:
        return rule.number_with(RuleVersion.Status.SCHEDULED)

    @admin.display(description="Canary")
    def canary(self, rule: Rule) -> int | None:
        return rule.number_with(RuleVersion.Status.CANARY)

    @admin.display(description="Outcomes per arm since the canary started")
    def canary_comparison(self, rule: Rule) -> SafeString:
        return admin_rollouts.canary_comparison_html(rule)

    @admin.display(description="Versions")
    def version_tools(self, rule: Rule) -> SafeString:
        return render_to_string("decisions/admin/version_tools.html", {"rule": rule})

    @admin.display(description="Versions")
    def version_compare(self, rule: Rule) -> SafeString:
        return render_to_string(
            "decisions/admin/version_tools.html", {"rule": rule, "read_only": True}
        )

    def audit_entries(self, obj: Any) -> QuerySet[AuditEntry]:
        return selectors.audit_entries_for_rule(rule=obj)

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

    def get_urls(self) -> list[URLPattern]:
        return [
            *admin_rollouts.canary_urls(self),
            *admin_views.rule_urls(self),
            *super().get_urls(),
        ]


class ReadOnlyAdmin(ReadOnlyAdminMixin, PermissionAdminMixin, admin.ModelAdmin):
    """Stored history: shown (to `view_permission`), never added, changed or deleted here."""


@admin.register(RuleVersion)
class RuleVersionAdmin(ReadOnlyAdmin):
    """Read-only: versions are immutable; the rule page holds their lifecycle buttons."""

    view_permission = Scope.RULES_READ
    list_display = ["rule", "number", "status", "priority", "outcome", "created_at"]
    list_filter = ["status", "rule__event_type"]
    search_fields = ["rule__key", "condition"]
    list_select_related = ["rule"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [field.name for field in RuleVersion._meta.fields]


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
        try:
            services.named_list_validate(
                values=(cleaned.get("values") or "").splitlines(),
                value_type=cleaned.get("value_type") or NamedList.ValueType.STRING,
            )
        except DomainError as error:
            form_add_domain_error(self, error)
        return cleaned


@admin.register(NamedList)
class NamedListAdmin(PermissionAdminMixin, AuditTrailMixin, admin.ModelAdmin):
    view_permission = Scope.RULES_READ
    change_permission = Scope.RULES_WRITE
    form = NamedListForm
    list_display = ["name", "value_type", "version", "item_count", "updated_at"]
    search_fields = ["name", "description", "items__value"]
    audit_target_type = "named_list"
    audit_target_field = "name"

    def get_queryset(self, request: HttpRequest) -> QuerySet[NamedList]:
        return super().get_queryset(request).annotate(item_count=Count("items"))

    @admin.display(description="Values", ordering="item_count")
    def item_count(self, named_list: Any) -> int:
        return named_list.item_count

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ["name", "version", "audit_trail"] if obj else ["version"]

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
        fields = ["event_type", "strategy", "default_outcome", "requires_approval"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["outcome_precedence"].initial = ", ".join(
                self.instance.outcome_precedence or []
            )

    def clean_outcome_precedence(self) -> list[str]:
        raw = self.cleaned_data.get("outcome_precedence") or ""
        try:
            return services.policy_validate(outcome_precedence=raw.split(","))
        except DomainError as error:
            raise validation_error_from(error) from None


@admin.register(Policy)
class PolicyAdmin(PermissionAdminMixin, AuditTrailMixin, admin.ModelAdmin):
    view_permission = Scope.RULES_READ
    change_permission = Scope.RULES_WRITE
    form = PolicyForm
    list_display = [
        "event_type",
        "strategy",
        "default_outcome",
        "precedence",
        "requires_approval",
        "warnings",
    ]
    audit_target_type = "policy"
    audit_target_field = "event_type"
    inlines = [admin_rollouts.VelocityAggregateInline]

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
    def static_check(self, policy: Policy) -> SafeString:
        return render_to_string(
            "decisions/admin/static_check.html",
            {"warnings": selectors.policy_static_check(event_type=policy.event_type)},
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
            requires_approval=form.cleaned_data.get("requires_approval", False),
            actor=request.user,
        )
        obj.pk = saved.pk

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        admin_rollouts.velocity_formset_save(request, form.instance, formset)


@admin.register(Decision)
class DecisionAdmin(ReadOnlyAdmin):
    view_permission = Scope.DECISIONS_READ
    list_display = ["id", "event_type", "outcome", "matched_version", "engine_us", "decided_at"]
    list_filter = ["outcome", "event_type"]
    list_select_related = ["matched_version__rule"]
    date_hierarchy = "decided_at"
    # The actions name the numbers messages went to: shown masked unless the viewer has pii:read.
    exclude = ["actions"]
    readonly_fields = ["actions_shown"]

    def get_object(self, request: HttpRequest, object_id: str, from_field: Any = None) -> Any:
        decision = super().get_object(request, object_id, from_field)
        if decision is not None:
            unmasked = privacy.reader_sees_pii(request.user, decision_ids=[decision.pk])
            decision.shown_actions = (
                decision.actions if unmasked else privacy.actions_masked(decision.actions)
            )
        return decision

    @admin.display(description="Actions")
    def actions_shown(self, decision: Decision) -> str:
        shown = getattr(decision, "shown_actions", None)
        return json.dumps(shown if shown is not None else [], sort_keys=True, ensure_ascii=False)


@admin.register(Backtest)
class BacktestAdmin(ReadOnlyAdmin):
    view_permission = Scope.RULES_READ
    list_display = ["id", "status", "event_types", "window_start", "window_end", "processed"]
    list_filter = ["status"]

    def get_urls(self) -> list[URLPattern]:
        return [*admin_views.backtest_urls(self), *super().get_urls()]


from decisions import admin_outbound  # noqa: E402, F401 -- registers review and webhook admins
