"""What the campaigns admins share: personal data masked without `pii:read` (unmasked reads
audited), and read-only ledgers."""

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from campaigns.exceptions import InvalidPhone
from campaigns.phones import phone_normalize
from core.admin_access import PermissionAdminMixin, ReadOnlyAdminMixin
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


class ReadOnlyAdmin(ReadOnlyAdminMixin, PersonalDataAdmin):
    """Ledgers are written by the system only."""
