"""The contact admin: created and edited through the services, a STOP reversed or a contact
erased only by a person allowed to, with a recorded reason."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from campaigns import (
    services,
)
from campaigns.admin_base import PersonalDataAdmin
from campaigns.models import (
    ConsentEvent,
    Contact,
)
from campaigns.pii import phone_shown
from campaigns.services.contacts import REASON_MAX_CHARS
from core.access import PeopleOnly, Scope
from core.errors import DomainError
from core.forms import form_add_domain_error
from core.permissions import request_may
from core.pii import pii_read_audit


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
