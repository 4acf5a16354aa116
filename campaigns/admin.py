"""Admin: campaigns edited while draft (config validated inline), the rest read-only.

Every admin asks for the permission its work needs (see core.access), and numbers, bodies and
provider error texts show masked to anyone without `pii:read`; their unmasked reads are audited.
"""

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from campaigns import (
    admin_contacts,  # noqa: F401 -- registers the contact admin
    admin_templates,  # noqa: F401 -- registers the SMS template admin
    services,
)
from campaigns.admin_base import ReadOnlyAdmin
from campaigns.config import config_parse
from campaigns.models import (
    Campaign,
    ConsentEvent,
    Message,
    MessageTransition,
    WebhookRequest,
)
from campaigns.pii import body_shown, numbers_shown, phone_shown
from core.access import Scope
from core.admin_access import PermissionAdminMixin
from core.errors import DomainError
from core.forms import validation_error_from
from core.permissions import request_may


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
class CampaignAdmin(PermissionAdminMixin, admin.ModelAdmin):
    form = CampaignForm
    list_display = ("name", "status", "created_at", "launched_at", "finished_at")
    list_filter = ("status",)
    search_fields = ("name",)
    actions = ["pause", "resume", "cancel"]
    view_permission = Scope.CAMPAIGNS_READ
    change_permission = Scope.CAMPAIGNS_WRITE

    def has_delete_permission(self, request: HttpRequest, obj: Campaign | None = None) -> bool:
        # Only a draft: a launched campaign is the record of what was sent.
        draft = obj is None or obj.status == Campaign.Status.DRAFT
        return draft and super().has_delete_permission(request, obj)

    def has_launch_permission(self, request: HttpRequest) -> bool:
        return request_may(request, Scope.CAMPAIGNS_LAUNCH)

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

    @admin.action(description="Pause selected campaigns", permissions=["launch"])
    def pause(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._operate(request, queryset, services.campaign_pause)

    @admin.action(description="Resume selected campaigns", permissions=["launch"])
    def resume(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._operate(request, queryset, services.campaign_resume)

    @admin.action(description="Cancel selected campaigns", permissions=["launch"])
    def cancel(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._operate(request, queryset, services.campaign_cancel)


class ContactRowsAdmin(ReadOnlyAdmin):
    """A ledger whose rows belong to a contact, shown and searched by the contact's number."""

    masked = {"contact_number": "masked_contact"}
    personal_search_fields = ("contact__phone",)
    phone_lookup = "contact__phone"

    @admin.display(description="Contact")
    def contact_number(self, obj: Any) -> str:
        return str(obj.contact.phone)

    @admin.display(description="Contact")
    def masked_contact(self, obj: Any) -> str:
        return phone_shown(obj.contact.phone, mask=True)


@admin.register(ConsentEvent)
class ConsentEventAdmin(ContactRowsAdmin):
    list_display = ("occurred_at", "contact_number", "topic", "action", "source")
    list_filter = ("action", "source", "topic")
    fields = (
        "occurred_at",
        "contact_number",
        "topic",
        "action",
        "source",
        "evidence",
        "phone_hash",
    )
    search_fields = ("contact__phone", "phone_hash")
    list_select_related = ("contact",)
    view_permission = Scope.CONTACTS_READ
    pii_target = "consent_event"


class TransitionInline(admin.TabularInline):
    model = MessageTransition
    fields = ("occurred_at", "from_status", "to_status", "source", "detail")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request_may(request, Scope.MESSAGES_READ)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Message)
class MessageAdmin(ContactRowsAdmin):
    list_display = (
        "id",
        "campaign",
        "contact_number",
        "status",
        "attempts",
        "error_code",
        "sent_at",
    )
    list_filter = ("status", "topic")
    # Every column of the row, the contact by its number (masked below without pii:read).
    fields = tuple(
        "contact_number" if field.name == "contact" else field.name
        for field in Message._meta.fields
        if field.name not in ("id", "created_at", "updated_at")
    )
    search_fields = ("contact__phone", "provider_sid", "reference")
    list_select_related = ("campaign", "contact")
    inlines = [TransitionInline]
    view_permission = Scope.MESSAGES_READ
    masked = {
        **ContactRowsAdmin.masked,
        "body": "masked_body",
        "error_message": "masked_error_message",
    }
    pii_target = "message"

    @admin.display(description="Body")
    def masked_body(self, obj: Message) -> str:
        return body_shown(obj.body, mask=True)

    @admin.display(description="Error message")
    def masked_error_message(self, obj: Message) -> str:
        return numbers_shown(obj.error_message, mask=True)


@admin.register(WebhookRequest)
class WebhookRequestAdmin(ReadOnlyAdmin):
    list_display = ("received_at", "kind", "outcome", "dedup_key", "processing_ms", "note")
    list_filter = ("kind", "outcome")
    fields = (
        "received_at",
        "kind",
        "outcome",
        "url",
        "headers",
        "body",
        "dedup_key",
        "note",
        "processing_ms",
    )
    search_fields = ("dedup_key", "body")
    view_permission = Scope.MESSAGES_READ
    # A raw webhook carries the number and, inbound, what the person wrote.
    masked = {"body": "masked_body"}
    personal_search_fields = ("body",)
    pii_target = "webhook_request"

    @admin.display(description="Body")
    def masked_body(self, obj: WebhookRequest) -> str:
        return body_shown(obj.body, mask=True)
