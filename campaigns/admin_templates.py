"""Admin for SMS templates: drafted by campaigns:write, approved by a campaign manager.

Each ModelAdmin hook asks for the permission it needs: viewing needs campaigns:read, drafting
and editing (only while not approved) campaigns:write, the approve action campaigns:launch
(and a person: the service refuses keys). Nothing is deleted: decisions name templates by key.
"""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from campaigns import services
from campaigns.models import SmsTemplate
from core.access import Scope
from core.errors import DomainError
from core.forms import validation_error_from
from core.permissions import request_may


class SmsTemplateForm(forms.ModelForm):
    class Meta:
        model = SmsTemplate
        fields = ["key", "body", "description"]
        widgets = {"body": forms.Textarea(attrs={"rows": 6, "cols": 90})}

    def clean_body(self) -> str:
        try:
            return services.sms_template_body_validate(self.cleaned_data["body"])
        except DomainError as error:
            raise validation_error_from(error) from None


@admin.register(SmsTemplate)
class SmsTemplateAdmin(admin.ModelAdmin):
    form = SmsTemplateForm
    list_display = ["key", "approved_at", "approved_by_label", "created_by", "created_at"]
    list_filter = [("approved_at", admin.EmptyFieldListFilter)]
    search_fields = ["key", "description"]
    readonly_fields = ["approved_by_label", "approved_at", "created_by", "created_at"]
    actions = ["approve"]

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request_may(request, Scope.CAMPAIGNS_READ)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request_may(request, Scope.CAMPAIGNS_READ)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request_may(request, Scope.CAMPAIGNS_WRITE)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.approved:
            return False  # an approved text is frozen
        return request_may(request, Scope.CAMPAIGNS_WRITE)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_approve_permission(self, request: HttpRequest) -> bool:
        return request_may(request, Scope.CAMPAIGNS_LAUNCH)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [*self.readonly_fields, "key"] if obj is not None else list(self.readonly_fields)

    def save_model(self, request: HttpRequest, obj: SmsTemplate, form: Any, change: bool) -> None:
        # The form's clean ran the service's checks; through the service for the audit trail.
        if change:
            services.sms_template_update(
                template=obj, body=obj.body, description=obj.description, actor=request.user
            )
        else:
            created = services.sms_template_create(
                key=obj.key, body=obj.body, description=obj.description, actor=request.user
            )
            obj.pk = created.pk

    @admin.action(description="Approve the selected templates", permissions=["approve"])
    def approve(self, request: HttpRequest, queryset: QuerySet[SmsTemplate]) -> None:
        for template in queryset:
            try:
                services.sms_template_approve(template=template, actor=request.user)
            except DomainError as error:
                self.message_user(request, f"{template.key}: {error.detail}", messages.ERROR)
                return
        self.message_user(request, f"{queryset.count()} template(s) approved.", messages.SUCCESS)
