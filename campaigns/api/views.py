"""Contacts, consent, campaigns and messages under /api/v1/: thin viewsets over the services.

About 500 lines because each viewset carries its OpenAPI declarations and scopes beside its
actions; the examples and serializers are already modules of their own (background jobs too).
"""

from collections.abc import Callable, Mapping
from typing import Any

from django.conf import settings
from django.http import HttpResponse
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from campaigns import selectors, services
from campaigns.api.examples import (
    CAMPAIGN_EXAMPLE,
    CONFIG_EXAMPLE,
    CONSENT_CHANGE_EXAMPLE,
    CONSENT_EXAMPLE,
    CONSENT_OVERRIDE_EXAMPLE,
    CONTACT_CREATE_EXAMPLE,
    CONTACT_EXAMPLE,
    ERASE_EXAMPLE,
    ERASURE_EXAMPLE,
    MESSAGE_DETAIL_EXAMPLE,
    MESSAGE_EXAMPLE,
    PREVIEW_EXAMPLE,
    PROBLEM_EXAMPLE,
    STATS_EXAMPLE,
    request_example,
    response_example,
)
from campaigns.api.jobs import (
    CampaignJobSerializer,
    job_accepted,
    job_response,
    with_location,
)
from campaigns.api.serializers import (
    CampaignSerializer,
    CampaignUpdateSerializer,
    CampaignWriteSerializer,
    ConsentChangeSerializer,
    ContactCreateSerializer,
    ContactSerializer,
    ContactUpdateSerializer,
    EraseSerializer,
    ErasureSerializer,
    MessageDetailSerializer,
    MessageSerializer,
)
from campaigns.models import Campaign, ConsentEvent, Contact, Message
from campaigns.pii import phone_shown, preview_read
from core.access import PeopleOnly, Scope
from core.errors import InvalidInput
from core.filters import IntegerFilter
from core.idempotency import idempotent_response
from core.permissions import ScopeRequired
from core.pii import may_read_pii, pii_read_audit
from core.schema import idempotency_key_parameter


def _valid(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _create(
    request: Request,
    incoming: type[serializers.Serializer],
    create: Callable[..., Any],
    outgoing: type[serializers.Serializer],
    context: Mapping[str, Any],
) -> HttpResponse:
    """Validate, create through the service (idempotently, per Idempotency-Key), answer 201."""
    payload = _valid(incoming, request.data)

    def produce() -> tuple[int, Any]:
        return 201, outgoing(create(**payload, actor=request.user), context=dict(context)).data

    return idempotent_response(request, produce)


class PersonalDataMixin(viewsets.GenericViewSet):
    """Numbers and bodies masked for a caller without `pii:read` (the serializers' `mask`);
    a read of them unmasked leaves one audit entry naming the rows it showed."""

    pii_target = "contact"

    @property
    def masked(self) -> bool:
        return not may_read_pii(self.request.user)

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "mask": self.masked}

    def pii_read(self, rows: list[int]) -> None:
        if not self.masked:
            pii_read_audit(actor=self.request.user, target_type=self.pii_target, target_ids=rows)

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        rows = list(page if page is not None else queryset)
        data = self.get_serializer(rows, many=True).data
        self.pii_read([row.pk for row in rows])
        if page is None:
            return Response(data)
        return self.get_paginated_response(data)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        row = self.get_object()
        data = self.get_serializer(row).data
        self.pii_read([row.pk])
        return Response(data)


# --- contacts ---------------------------------------------------------------------------------


class ContactFilter(filters.FilterSet):
    class Meta:
        model = Contact
        fields = ["opted_out", "number_invalid", "region"]


@extend_schema_view(
    list=extend_schema(
        summary="List contacts", examples=[response_example("Page", CONTACT_EXAMPLE)]
    ),
    retrieve=extend_schema(
        summary="A contact by phone (any form of the number, URL-encoded)",
        examples=[response_example("Contact", CONTACT_EXAMPLE)],
    ),
)
class ContactViewSet(PersonalDataMixin, viewsets.ReadOnlyModelViewSet):
    """Contacts keyed by their E.164 number."""

    permission_classes = [ScopeRequired]
    required_scopes = {
        "list": Scope.CONTACTS_READ,
        "retrieve": Scope.CONTACTS_READ,
        "consent": Scope.CONTACTS_READ,
        "create": Scope.CONTACTS_WRITE,
        "partial_update": Scope.CONTACTS_WRITE,
        "import_csv": Scope.CONTACTS_WRITE,
        # A compliance officer records consent (overrides included) without contacts:write.
        "consent_change": (Scope.CONTACTS_WRITE, PeopleOnly.CONSENT_OVERRIDE),
        "erase": PeopleOnly.CONTACTS_ERASE,
    }
    serializer_class = ContactSerializer
    lookup_field = "phone"
    lookup_value_regex = r"[^/]+"
    filterset_class = ContactFilter
    ordering_fields = ["phone", "created_at"]

    def get_queryset(self) -> Any:
        return selectors.contact_list()

    def get_object(self) -> Contact:
        return selectors.contact_get(phone=self.kwargs["phone"])

    @extend_schema(
        summary="Create a contact",
        parameters=[idempotency_key_parameter()],
        request=ContactCreateSerializer,
        responses={201: ContactSerializer},
        examples=[
            request_example("New contact", CONTACT_CREATE_EXAMPLE),
            response_example("Created", CONTACT_EXAMPLE),
            PROBLEM_EXAMPLE,
        ],
    )
    def create(self, request: Request) -> HttpResponse:
        return _create(
            request,
            ContactCreateSerializer,
            services.contact_create,
            ContactSerializer,
            self.get_serializer_context(),
        )

    @extend_schema(
        summary="Update a contact's attributes or time-zone override",
        request=ContactUpdateSerializer,
        responses={200: ContactSerializer},
        examples=[
            request_example("Attributes", {"attributes": {"plan": "silver"}}),
            response_example("Updated", CONTACT_EXAMPLE),
        ],
    )
    def partial_update(self, request: Request, phone: str) -> Response:
        contact = self.get_object()  # an unknown contact is a 404 whatever the body
        payload = _valid(ContactUpdateSerializer, request.data)
        contact = services.contact_update(contact=contact, **payload, actor=request.user)
        return Response(self.get_serializer(contact).data)

    @extend_schema(
        summary="Import contacts from CSV",
        description=(
            "Multipart `file` (or a `text/csv` body). Header: `phone`, optional `time_zone`, "
            "`consent_<topic>` (yes/no) and any attribute columns. Rejected rows are reported "
            "with their line number; valid rows are imported. The import runs in the background: "
            "the answer is the job (202, `Location` to poll), its `result` the report."
        ),
        request={
            "multipart/form-data": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary"}},
                "required": ["file"],
            }
        },
        responses={202: CampaignJobSerializer},
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="import",
        parser_classes=[MultiPartParser, FormParser, JSONParser],
    )
    def import_csv(self, request: Request) -> HttpResponse:
        upload = request.FILES.get("file")
        if upload is None:
            raise InvalidInput("Upload a CSV as `file`.", errors={"file": ["Required."]})
        if upload.size and upload.size > settings.API_UPLOAD_MAX_BYTES:
            raise InvalidInput("The file is too large.", errors={"file": ["Too large."]})
        try:
            text = upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InvalidInput(
                "The file is not UTF-8 text.", errors={"file": ["Not UTF-8."]}
            ) from None
        job = services.campaign_job_request(kind="import", payload=text, actor=request.user)
        return job_response(request, job)

    def _consent_state(self, contact: Contact) -> dict[str, Any]:
        state = selectors.consent_state(contact=contact)
        return {**state, "phone": phone_shown(state["phone"], mask=self.masked)}

    @extend_schema(
        summary="A contact's consent: current state per topic and the ledger",
        responses={200: OpenApiTypes.OBJECT},
        examples=[response_example("Consent", CONSENT_EXAMPLE)],
    )
    @action(detail=True, methods=["get"])
    def consent(self, request: Request, phone: str) -> Response:
        contact = self.get_object()
        state = self._consent_state(contact)
        self.pii_read([contact.pk])
        return Response(state)

    @extend_schema(
        summary="Record an opt-in or opt-out",
        description=(
            "Needs `contacts:write` (or, for a person, `consent:override`). An opt-in for a "
            "contact who opted out (STOP) is refused with 403 unless a person with the "
            "compliance role (`consent:override`) makes it and gives a `reason`; no API key "
            "can. The contact's own START (an inbound SMS) needs no one's permission."
        ),
        request=ConsentChangeSerializer,
        responses={200: OpenApiTypes.OBJECT},
        examples=[
            request_example("Opt out", CONSENT_CHANGE_EXAMPLE),
            request_example("Compliance override", CONSENT_OVERRIDE_EXAMPLE),
            PROBLEM_EXAMPLE,
        ],
    )
    @consent.mapping.post
    def consent_change(self, request: Request, phone: str) -> Response:
        contact = self.get_object()
        payload = _valid(ConsentChangeSerializer, request.data)
        services.consent_change(
            contact=contact, source=ConsentEvent.Source.API, actor=request.user, **payload
        )
        contact.refresh_from_db()
        return Response(self._consent_state(contact))

    @extend_schema(
        summary="Erase a contact's personal data (compliance only)",
        description=(
            "Removes the number, attributes and message bodies; keeps message counts and the "
            "consent ledger (keyed by a salted hash of the number). The contact stays opted "
            "out for good. People with `contacts:erase` only: no API key carries it."
        ),
        request=EraseSerializer,
        responses={200: ErasureSerializer},
        examples=[
            request_example("Reason", ERASE_EXAMPLE),
            response_example("Erased", ERASURE_EXAMPLE),
            PROBLEM_EXAMPLE,
        ],
    )
    @action(detail=True, methods=["post"])
    def erase(self, request: Request, phone: str) -> Response:
        payload = _valid(EraseSerializer, request.data)
        erasure = services.contact_erase(
            contact=self.get_object(), reason=payload["reason"], actor=request.user
        )
        return Response(ErasureSerializer(erasure.as_dict()).data)


# --- campaigns --------------------------------------------------------------------------------


def _campaign_action(summary: str, *, idempotent: bool = False) -> Any:
    return extend_schema(
        summary=summary,
        parameters=[idempotency_key_parameter()] if idempotent else [],
        request=None,
        responses={200: CampaignSerializer},
        examples=[response_example("Campaign", CAMPAIGN_EXAMPLE)],
    )


@extend_schema_view(
    list=extend_schema(
        summary="List campaigns", examples=[response_example("Page", CAMPAIGN_EXAMPLE)]
    ),
    retrieve=extend_schema(
        summary="A campaign", examples=[response_example("Campaign", CAMPAIGN_EXAMPLE)]
    ),
)
class CampaignViewSet(viewsets.ReadOnlyModelViewSet):
    """Campaigns: create and edit while draft, preview, launch, pause, resume, cancel, stats."""

    permission_classes = [ScopeRequired]
    required_scopes = {
        "list": Scope.CAMPAIGNS_READ,
        "retrieve": Scope.CAMPAIGNS_READ,
        "preview": Scope.CAMPAIGNS_READ,
        "stats": Scope.CAMPAIGNS_READ,
        "create": Scope.CAMPAIGNS_WRITE,
        "partial_update": Scope.CAMPAIGNS_WRITE,
        "launch": Scope.CAMPAIGNS_LAUNCH,
        "pause": Scope.CAMPAIGNS_LAUNCH,
        "resume": Scope.CAMPAIGNS_LAUNCH,
        "cancel": Scope.CAMPAIGNS_LAUNCH,
    }
    serializer_class = CampaignSerializer
    filterset_fields = ["status"]
    ordering_fields = ["created_at", "name"]

    def get_queryset(self) -> Any:
        return selectors.campaign_list()

    def get_object(self) -> Campaign:
        try:
            campaign_id = int(self.kwargs["pk"])
        except ValueError:
            campaign_id = 0
        return selectors.campaign_get(campaign_id=campaign_id)

    @extend_schema(
        summary="Create a draft campaign",
        parameters=[idempotency_key_parameter()],
        request=CampaignWriteSerializer,
        responses={201: CampaignSerializer},
        examples=[
            request_example("Draft", {"name": "Gold offer", "config": CONFIG_EXAMPLE}),
            response_example("Created", CAMPAIGN_EXAMPLE),
        ],
    )
    def create(self, request: Request) -> HttpResponse:
        return _create(
            request,
            CampaignWriteSerializer,
            services.campaign_create,
            CampaignSerializer,
            self.get_serializer_context(),
        )

    @extend_schema(
        summary="Update a draft campaign (409 once launched)",
        request=CampaignUpdateSerializer,
        responses={200: CampaignSerializer},
        examples=[
            request_example("Rename", {"name": "Gold offer (v2)"}),
            response_example("Updated", CAMPAIGN_EXAMPLE),
        ],
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        campaign = self.get_object()  # an unknown campaign is a 404 whatever the body
        payload = _valid(CampaignUpdateSerializer, request.data)
        campaign = services.campaign_update(campaign=campaign, **payload, actor=request.user)
        return Response(CampaignSerializer(campaign).data)

    @extend_schema(
        summary="Preview: matched, eligible, exclusions by reason, first rendered messages",
        description=(
            "Answers at once over a small audience; over CAMPAIGNS_PREVIEW_INLINE_MAX_CONTACTS "
            "it is a background job (202, `Location` to poll; its `result` is the preview)."
        ),
        responses={200: OpenApiTypes.OBJECT, 202: CampaignJobSerializer},
        examples=[response_example("Preview", PREVIEW_EXAMPLE)],
    )
    @action(detail=True, methods=["get"])
    def preview(self, request: Request, pk: str) -> HttpResponse:
        campaign = self.get_object()
        if services.preview_runs_inline():
            preview = selectors.campaign_preview(campaign=campaign)
            return Response(preview_read(preview, viewer=request.user))
        job = services.campaign_job_request(kind="preview", campaign=campaign, actor=request.user)
        return job_response(request, job)

    @extend_schema(
        summary="Launch: materialise messages and start (or schedule) sending",
        description=(
            "A background job on the heavy queue: the answer is the job (202, `Location` to "
            "poll); one job per campaign at a time (409 names the running one)."
        ),
        parameters=[idempotency_key_parameter()],
        request=None,
        responses={202: CampaignJobSerializer},
    )
    @action(detail=True, methods=["post"])
    def launch(self, request: Request, pk: str) -> HttpResponse:
        campaign = self.get_object()

        def produce() -> tuple[int, Any]:
            job = services.campaign_job_request(
                kind="launch", campaign=campaign, actor=request.user
            )
            return job_accepted(request, job)

        return with_location(idempotent_response(request, produce))

    def _operate(self, operation: Callable[..., Campaign]) -> Response:
        campaign = operation(campaign=self.get_object(), actor=self.request.user)
        return Response(CampaignSerializer(campaign).data)

    @_campaign_action("Pause: no new sends within a second")
    @action(detail=True, methods=["post"])
    def pause(self, request: Request, pk: str) -> Response:
        return self._operate(services.campaign_pause)

    @_campaign_action("Resume a paused campaign")
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: str) -> Response:
        return self._operate(services.campaign_resume)

    @_campaign_action("Cancel: every message not yet sent is canceled")
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        return self._operate(services.campaign_cancel)

    @extend_schema(
        summary="Counts by status, delivery rate, failures by error code, sends per minute",
        responses={200: OpenApiTypes.OBJECT},
        examples=[response_example("Stats", STATS_EXAMPLE)],
    )
    @action(detail=True, methods=["get"])
    def stats(self, request: Request, pk: str) -> Response:
        return Response(selectors.campaign_stats(campaign=self.get_object()))


# --- messages ---------------------------------------------------------------------------------


class MessageFilter(filters.FilterSet):
    phone = filters.CharFilter(field_name="contact__phone", label="The contact's E.164 number")
    campaign = IntegerFilter(field_name="campaign_id")

    class Meta:
        model = Message
        fields = ["campaign", "status", "reference", "topic"]


@extend_schema_view(
    list=extend_schema(
        summary="List messages (filter by campaign, status, phone, reference)",
        examples=[response_example("Page", MESSAGE_EXAMPLE)],
    ),
    retrieve=extend_schema(
        summary="A message with its transitions",
        responses={200: MessageDetailSerializer},
        examples=[response_example("Message", MESSAGE_DETAIL_EXAMPLE)],
    ),
)
class MessageViewSet(
    PersonalDataMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Messages, read-only: the ledger of every send."""

    permission_classes = [ScopeRequired]
    required_scopes = {"list": Scope.MESSAGES_READ, "retrieve": Scope.MESSAGES_READ}
    pii_target = "message"
    serializer_class = MessageSerializer
    filterset_class = MessageFilter
    ordering_fields = ["id", "sent_at"]

    def get_queryset(self) -> Any:
        return selectors.message_list()

    def retrieve(self, request: Request, pk: str) -> Response:
        message_id = int(pk) if pk.isdigit() else 0
        message = selectors.message_get(message_id=message_id)
        data = MessageDetailSerializer(message, context=self.get_serializer_context()).data
        self.pii_read([message.pk])
        return Response(data, status=status.HTTP_200_OK)
