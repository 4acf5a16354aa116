"""Admin: campaigns edited while draft (config validated inline), the rest read-only."""

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from campaigns import (
    admin_templates,  # noqa: F401 -- registers the SMS template admin
    services,
)
from campaigns.config import config_parse
from campaigns.models import (
    Campaign,
    ConsentEvent,
    Contact,
    Message,
    MessageTransition,
    WebhookRequest,
)
from core.errors import DomainError
from core.forms import form_add_domain_error, validation_error_from


class ReadOnlyAdmin(admin.ModelAdmin):
    """Ledgers are written by the system only."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class CampaignForm(forms.ModelForm):
    config = forms.JSONField(
        widget=forms.Textarea(attrs={"rows": 14, "cols": 90}),
        help_text=(
            'JSON: {"segment": CEL over contact, "template": Jinja, "topic", "start_at", '
            '"send_window": {"start": "09:00", "end": "20:00"}, "rate_per_second", '
            '"frequency_cap": {"max_messages": 3, "per_hours": 24}}'
        ),
    )

    class Meta:
        model = Campaign
        fields = ["name", "config"]

    def clean_config(self) -> Any:
        config = self.cleaned_data["config"]
        try:
            config_parse(config)
        except DomainError as error:
            raise validation_error_from(error) from None
        return config


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    form = CampaignForm
    list_display = ("name", "status", "created_at", "launched_at", "finished_at")
    list_filter = ("status",)
    search_fields = ("name",)
    actions = ["pause", "resume", "cancel"]

    def get_readonly_fields(self, request: HttpRequest, obj: Campaign | None = None) -> Any:
        base = ["status", "created_by", "launched_at", "finished_at", "launch_summary"]
        if obj is not None and obj.status != Campaign.Status.DRAFT:
            return [*base, "name", "config_display"]
        return base

    def get_fields(self, request: HttpRequest, obj: Campaign | None = None) -> Any:
        if obj is not None and obj.status != Campaign.Status.DRAFT:
            return ["name", "config_display", *self.get_readonly_fields(request, obj)[:-2]]
        return ["name", "config", "status"]

    @admin.display(description="Config")
    def config_display(self, obj: Campaign) -> str:
        return json.dumps(obj.config, indent=2)

    def save_model(self, request: HttpRequest, obj: Campaign, form: Any, change: bool) -> None:
        # Through the services, so the audit trail and the draft-only rule apply here too.
        if change:
            updated = services.campaign_update(
                campaign=obj, name=obj.name, config=obj.config, actor=request.user
            )
        else:
            updated = services.campaign_create(name=obj.name, config=obj.config, actor=request.user)
        obj.pk = updated.pk

    def _operate(self, request: HttpRequest, queryset: QuerySet, operation: Any) -> None:
        for campaign in queryset:
            try:
                operation(campaign=campaign, actor=request.user)
            except DomainError as error:
                self.message_user(request, f"{campaign}: {error.detail}", messages.ERROR)

    @admin.action(description="Pause selected campaigns")
    def pause(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._operate(request, queryset, services.campaign_pause)

    @admin.action(description="Resume selected campaigns")
    def resume(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._operate(request, queryset, services.campaign_resume)

    @admin.action(description="Cancel selected campaigns")
    def cancel(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._operate(request, queryset, services.campaign_cancel)


class ContactForm(forms.ModelForm):
    class Meta:
        model = Contact
        fields = ["phone", "attributes", "time_zone"]

    def clean(self) -> dict[str, Any]:
        """The service's own checks, so a bad input is a form error and nothing is saved."""
        cleaned = super().clean() or {}
        try:
            phone = services.contact_validate(
                phone=cleaned.get("phone"),  # absent on change: the number is read-only
                attributes=cleaned.get("attributes"),
                time_zone=cleaned.get("time_zone"),
            )
        except DomainError as error:
            form_add_domain_error(self, error)
            return cleaned
        if phone:
            cleaned["phone"] = phone
        return cleaned


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    form = ContactForm
    list_display = ("phone", "region", "time_zone", "opted_out", "number_invalid", "created_at")
    list_filter = ("opted_out", "number_invalid", "region")
    search_fields = ("phone",)
    actions = ["opt_out_everything", "opt_back_in"]

    def get_readonly_fields(self, request: HttpRequest, obj: Contact | None = None) -> Any:
        fixed = ["region", "number_time_zones", "opted_out", "number_invalid"]
        return ["phone", *fixed] if obj is not None else fixed

    def save_model(self, request: HttpRequest, obj: Contact, form: Any, change: bool) -> None:
        # The form's clean ran the service's checks; through the service for the audit trail.
        if change:
            services.contact_update(
                contact=obj, attributes=obj.attributes, time_zone=obj.time_zone, actor=request.user
            )
        else:
            created = services.contact_create(
                phone=obj.phone,
                attributes=obj.attributes,
                time_zone=obj.time_zone,
                actor=request.user,
            )
            obj.pk = created.pk

    def _consent(self, request: HttpRequest, queryset: QuerySet, action: str) -> None:
        for contact in queryset:
            services.consent_change(
                contact=contact,
                topic=ConsentEvent.ALL_TOPICS,
                action=action,
                source=ConsentEvent.Source.ADMIN,
                evidence={"admin": request.user.get_username()},
                actor=request.user,
            )

    @admin.action(description="Opt out of every topic (global STOP)")
    def opt_out_everything(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._consent(request, queryset, ConsentEvent.Action.OPT_OUT)

    @admin.action(description="Lift the global opt-out")
    def opt_back_in(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._consent(request, queryset, ConsentEvent.Action.OPT_IN)


@admin.register(ConsentEvent)
class ConsentEventAdmin(ReadOnlyAdmin):
    list_display = ("occurred_at", "contact", "topic", "action", "source")
    list_filter = ("action", "source", "topic")
    search_fields = ("contact__phone",)
    list_select_related = ("contact",)


class TransitionInline(admin.TabularInline):
    model = MessageTransition
    fields = ("occurred_at", "from_status", "to_status", "source", "detail")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = ("id", "campaign", "contact", "status", "attempts", "error_code", "sent_at")
    list_filter = ("status", "topic")
    search_fields = ("contact__phone", "provider_sid", "reference")
    list_select_related = ("campaign", "contact")
    inlines = [TransitionInline]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Viewable (so the transitions show), never editable: fields are all read-only.
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return True


@admin.register(WebhookRequest)
class WebhookRequestAdmin(ReadOnlyAdmin):
    list_display = ("received_at", "kind", "outcome", "dedup_key", "processing_ms", "note")
    list_filter = ("kind", "outcome")
    search_fields = ("dedup_key", "body")
