"""Admin: campaigns edited while draft (config validated inline), the rest read-only.

Every admin asks for the permission its work needs (see core.access), and numbers, bodies and
provider error texts show masked to anyone without `pii:read`; their unmasked reads are audited.
"""

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from campaigns import (
    admin_templates,  # noqa: F401 -- registers the SMS template admin
    services,
)
from campaigns.config import config_parse
from campaigns.exceptions import InvalidPhone
from campaigns.models import (
    Campaign,
    ConsentEvent,
    Contact,
    Message,
    MessageTransition,
    WebhookRequest,
)
from campaigns.phones import phone_normalize
from campaigns.pii import body_shown, numbers_shown, phone_shown
from campaigns.services.contacts import REASON_MAX_CHARS
from core.access import PeopleOnly, Scope
from core.admin_access import PermissionAdminMixin
from core.errors import DomainError
from core.forms import form_add_domain_error, validation_error_from
from core.permissions import request_may
from core.pii import may_read_pii, pii_read_audit


class PersonalDataAdmin(PermissionAdminMixin, admin.ModelAdmin):
    """An admin whose personal columns and fields show masked without `pii:read`.

    `masked` maps a column or field to the display method shown in its place; `phone_lookup`
    is the number field a search term matches exactly (without `pii:read`, personal fields are
    searched by the whole number only, so a number cannot be guessed digit by digit).
    """

    masked: dict[str, str] = {}
    personal_search_fields: tuple[str, ...] = ()
    phone_lookup = ""
    pii_target = ""

    def _unmasked(self, request: HttpRequest) -> bool:
        return may_read_pii(request.user)

    def _fit(self, request: HttpRequest, names: Any) -> list[Any]:
        if self._unmasked(request):
            return list(names)
        return [self.masked.get(name, name) for name in names]

    def get_list_display(self, request: HttpRequest) -> Any:
        return self._fit(request, super().get_list_display(request))

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = super().get_fields(request, obj)
        if self._unmasked(request):
            return fields
        # An input stays an input (a number typed into the add form); what is shown is masked.
        editable = (
            self.has_change_permission(request, obj)
            if obj is not None
            else self.has_add_permission(request)
        )
        shown = set(self.get_readonly_fields(request, obj))
        return [
            self.masked[name]
            if name in self.masked and (not editable or self.masked[name] in shown)
            else name
            for name in fields
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self._fit(request, super().get_readonly_fields(request, obj))

    def get_search_fields(self, request: HttpRequest) -> Any:
        fields = super().get_search_fields(request)
        if self._unmasked(request):
            return fields
        return [field for field in fields if field not in self.personal_search_fields]

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        results, duplicates = super().get_search_results(request, queryset, search_term)
        if not search_term.strip() or self._unmasked(request) or not self.phone_lookup:
            return results, duplicates
        if not self.get_search_fields(request):
            results = queryset.none()  # Django's search with no fields would keep every row
        try:
            number = phone_normalize(search_term.strip())
        except InvalidPhone:
            return results, duplicates
        return results | queryset.filter(**{self.phone_lookup: number}), duplicates

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        changelist = getattr(response, "context_data", {}).get("cl")
        if changelist is not None and self._unmasked(request):
            rows = [row.pk for row in changelist.result_list]
            pii_read_audit(actor=request.user, target_type=self.pii_target, target_ids=rows)
        return response

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        response = super().change_view(request, object_id, form_url, extra_context)
        shown = request.method == "GET" and response.status_code == 200
        if shown and self._unmasked(request):
            pii_read_audit(actor=request.user, target_type=self.pii_target, target_ids=[object_id])
        return response


class ReadOnlyAdmin(PersonalDataAdmin):
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


class ReasonForm(forms.Form):
    reason = forms.CharField(
        max_length=REASON_MAX_CHARS,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        help_text="Recorded in the consent ledger and the audit trail.",
    )


@admin.register(Contact)
class ContactAdmin(PersonalDataAdmin):
    form = ContactForm
    list_display = (
        "phone",
        "region",
        "time_zone",
        "opted_out",
        "number_invalid",
        "erased_at",
        "created_at",
    )
    list_filter = ("opted_out", "number_invalid", "region")
    search_fields = ("phone",)
    actions = ["opt_out_everything", "opt_back_in", "erase"]
    view_permission = Scope.CONTACTS_READ
    change_permission = Scope.CONTACTS_WRITE
    masked = {"phone": "masked_phone"}
    personal_search_fields = ("phone",)
    phone_lookup = "phone"
    pii_target = "contact"

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A contact leaves by erasure, which keeps the counts and the consent ledger.
        return False

    def has_override_permission(self, request: HttpRequest) -> bool:
        return request_may(request, PeopleOnly.CONSENT_OVERRIDE)

    def has_erase_permission(self, request: HttpRequest) -> bool:
        return request_may(request, PeopleOnly.CONTACTS_ERASE)

    def get_readonly_fields(self, request: HttpRequest, obj: Contact | None = None) -> Any:
        fixed = ["region", "number_time_zones", "opted_out", "number_invalid", "erased_at"]
        return self._fit(request, ["phone", *fixed] if obj is not None else fixed)

    @admin.display(description="Phone", ordering="phone")
    def masked_phone(self, obj: Contact) -> str:
        return phone_shown(obj.phone, mask=True)

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

    def _each(self, request: HttpRequest, queryset: QuerySet, change: Any) -> int:
        """Apply `change` to every selected contact; a refusal is reported, not raised."""
        done = 0
        for contact in queryset:
            try:
                change(contact)
            except DomainError as error:
                shown = phone_shown(contact.phone, mask=not self._unmasked(request))
                self.message_user(request, f"{shown}: {error.detail}", messages.ERROR)
            else:
                done += 1
        return done

    def _with_reason(
        self, request: HttpRequest, queryset: QuerySet, *, action: str, title: str, change: Any
    ) -> TemplateResponse | None:
        """A compliance action: first a page that asks why, then `change(contact, reason)`."""
        form = ReasonForm(request.POST if "confirm" in request.POST else None)
        if form.is_bound and form.is_valid():
            reason = form.cleaned_data["reason"]
            done = self._each(request, queryset, lambda contact: change(contact, reason))
            self.message_user(request, f"{title}: {done} contact(s).", messages.SUCCESS)
            return None
        mask = not self._unmasked(request)
        if not mask:
            rows = [contact.pk for contact in queryset]
            pii_read_audit(actor=request.user, target_type=self.pii_target, target_ids=rows)
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.model._meta,
            "action": action,
            "form": form,
            "contacts": [
                (contact.pk, phone_shown(contact.phone, mask=mask)) for contact in queryset
            ],
        }
        return TemplateResponse(request, "campaigns/admin/reason.html", context)

    def _consent(self, request: HttpRequest, action: str) -> Any:
        """Every topic's consent of one contact, from this admin, with an optional reason."""

        def change(contact: Contact, reason: str = "") -> bool:
            return services.consent_change(
                contact=contact,
                topic=ConsentEvent.ALL_TOPICS,
                action=action,
                source=ConsentEvent.Source.ADMIN,
                evidence={"admin": request.user.get_username()},
                reason=reason,
                actor=request.user,
            )

        return change

    @admin.action(description="Opt out of every topic (global STOP)", permissions=["change"])
    def opt_out_everything(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._each(request, queryset, self._consent(request, ConsentEvent.Action.OPT_OUT))

    @admin.action(
        description="Lift the global opt-out (compliance, with a reason)", permissions=["override"]
    )
    def opt_back_in(self, request: HttpRequest, queryset: QuerySet) -> TemplateResponse | None:
        lift = self._consent(request, ConsentEvent.Action.OPT_IN)
        return self._with_reason(
            request, queryset, action="opt_back_in", title="Lift the global opt-out", change=lift
        )

    @admin.action(
        description="Erase personal data (compliance, with a reason)", permissions=["erase"]
    )
    def erase(self, request: HttpRequest, queryset: QuerySet) -> TemplateResponse | None:
        def erase(contact: Contact, reason: str) -> Any:
            return services.contact_erase(contact=contact, reason=reason, actor=request.user)

        return self._with_reason(
            request, queryset, action="erase", title="Erase personal data", change=erase
        )


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
