"""Admin parts of history in rules and safe roll-outs: a policy's velocity aggregates (an inline
saved through the services), the canary form of a version, and the rule page's comparison of a
running canary with its control."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.urls import URLPattern
from django.utils.safestring import SafeString

from core.access import Scope
from core.admin_access import PermissionAdminMixin
from core.errors import DomainError
from core.forms import form_add_domain_error
from decisions import admin_views, selectors, services
from decisions.models import Policy, Rule, RuleVersion, VelocityAggregate


class VelocityAggregateFormSet(forms.BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        for form in self.forms:
            if form.instance.pk is not None and "name" in form.changed_data:
                # Rules name it: a rename would leave them reading a name nobody declares.
                form.add_error("name", "Rules read it by name: declare a new one instead.")
        # Refused here, with the readers named, rather than by the service after the policy saved.
        for form in self.deleted_forms:
            aggregate = form.instance
            if aggregate.pk is None:
                continue
            readers = selectors.velocity_readers(
                event_type=aggregate.policy.event_type, name=aggregate.name
            )
            if readers:
                raise ValidationError(
                    f"velocity.{aggregate.name} is read by {', '.join(readers)}; retire those "
                    "versions first."
                )


class VelocityAggregateInline(PermissionAdminMixin, admin.TabularInline):
    """The policy's named aggregates; rules of its event type read them as velocity.<name>."""

    model = VelocityAggregate
    formset = VelocityAggregateFormSet
    view_permission = Scope.RULES_READ
    change_permission = Scope.RULES_WRITE
    fields = ["name", "function", "key_field", "field", "window_seconds"]
    extra = 0
    verbose_name = "velocity aggregate"


def velocity_formset_save(request: HttpRequest, policy: Policy, formset: Any) -> None:
    """Save the inline through the services (audit, index build), one aggregate at a time,
    recording what the admin's change message lists (as formset.save() would)."""
    formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
    for form in formset.deleted_forms:
        if form.instance.pk is not None:
            services.velocity_aggregate_delete(
                event_type=policy.event_type, name=form.instance.name, actor=request.user
            )
            formset.deleted_objects.append(form.instance)
    for form in formset.forms:
        if form in formset.deleted_forms or not form.has_changed():
            continue
        data = form.cleaned_data
        saved = services.velocity_aggregate_save(
            event_type=policy.event_type,
            name=data["name"],
            function=data["function"],
            key_field=data["key_field"],
            field=data.get("field") or "",
            window_seconds=data["window_seconds"],
            actor=request.user,
        )
        if form.instance.pk is None:
            formset.new_objects.append(saved)
        else:
            formset.changed_objects.append((saved, form.changed_data))


class CanaryForm(forms.Form):
    percent = forms.IntegerField(
        min_value=1, max_value=99, initial=10, help_text="The share of events this version decides."
    )
    key = forms.RegexField(
        regex=r"^[a-z][a-z0-9_]*$",
        max_length=64,
        initial="customer_id",
        help_text="The payload field whose hash picks the events; the same value always lands "
        "in the same arm.",
    )


def rule_version_canary(
    request: HttpRequest, *, model_admin: admin.ModelAdmin, rule_id: int, number: int
) -> HttpResponse:
    """Run a draft or shadow version as a canary (or change a running canary's share)."""
    admin_views.permission_check(request, Scope.RULES_WRITE)
    rule = get_object_or_404(Rule, pk=rule_id)
    version = get_object_or_404(RuleVersion, rule=rule, number=number)
    initial = (
        {"percent": version.canary_percent, "key": version.canary_key}
        if version.canary_percent
        else None
    )
    form = CanaryForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            updated = services.rule_version_canary(
                version=version, **form.cleaned_data, actor=request.user
            )
        except DomainError as error:
            form_add_domain_error(form, error)
        else:
            messages.success(
                request,
                f"Version {updated.number} decides {updated.canary_percent} % of the events "
                f"(by {updated.canary_key}).",
            )
            return HttpResponseRedirect(admin_views.rule_change_url(rule))
    return admin_views.render_rule_page(
        request,
        model_admin,
        "canary_form.html",
        rule=rule,
        title=f"Canary of {rule.key} version {version.number}",
        form=form,
        version=version,
    )


def canary_urls(model_admin: admin.ModelAdmin) -> list[URLPattern]:
    """Before the rule admin's transition route, which would take `canary` as a transition."""
    return [
        admin_views.admin_path(
            "<int:rule_id>/versions/<int:number>/canary/",
            rule_version_canary,
            model_admin,
            "decisions_rule_canary",
            permission=Scope.RULES_WRITE,
        )
    ]


def canary_comparison_html(rule: Rule) -> SafeString:
    return render_to_string(
        "decisions/admin/canary_comparison.html",
        {"comparison": selectors.canary_comparison(rule=rule)},
    )
