"""Contacts, consent, campaigns and messages under /api/v1/: thin viewsets over the services."""

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpResponse
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from campaigns import selectors, services
from campaigns.api.examples import (
    CAMPAIGN_EXAMPLE,
    CONFIG_EXAMPLE,
    CONSENT_CHANGE_EXAMPLE,
    CONSENT_EXAMPLE,
    CONTACT_CREATE_EXAMPLE,
    CONTACT_EXAMPLE,
    IMPORT_REPORT_EXAMPLE,
    MESSAGE_DETAIL_EXAMPLE,
    MESSAGE_EXAMPLE,
    PREVIEW_EXAMPLE,
    PROBLEM_EXAMPLE,
    STATS_EXAMPLE,
    request_example,
    response_example,
)
from campaigns.api.serializers import (
    CampaignSerializer,
    CampaignUpdateSerializer,
    CampaignWriteSerializer,
    ConsentChangeSerializer,
    ContactCreateSerializer,
    ContactSerializer,
    ContactUpdateSerializer,
    ImportReportSerializer,
    MessageDetailSerializer,
    MessageSerializer,
)
from campaigns.models import Campaign, ConsentEvent, Contact, Message
from core.errors import InvalidInput
from core.filters import IntegerFilter
from core.idempotency import idempotent_response
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
) -> HttpResponse:
    """Validate, create through the service (idempotently, per Idempotency-Key), answer 201."""
    payload = _valid(incoming, request.data)

    def produce() -> tuple[int, Any]:
        return 201, outgoing(create(**payload, actor=request.user)).data

    return idempotent_response(request, produce)


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
class ContactViewSet(viewsets.ReadOnlyModelViewSet):
    """Contacts keyed by their E.164 number."""

    permission_classes = [IsAuthenticated]
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
        return _create(request, ContactCreateSerializer, services.contact_create, ContactSerializer)

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
        return Response(ContactSerializer(contact).data)

    @extend_schema(
        summary="Import contacts from CSV",
        description=(
            "Multipart `file` (or a `text/csv` body). Header: `phone`, optional `time_zone`, "
            "`consent_<topic>` (yes/no) and any attribute columns. Rejected rows are reported "
            "with their line number; valid rows are imported."
        ),
        request={
            "multipart/form-data": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary"}},
                "required": ["file"],
            }
        },
        responses={200: ImportReportSerializer},
        examples=[response_example("Report", IMPORT_REPORT_EXAMPLE)],
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="import",
        parser_classes=[MultiPartParser, FormParser, JSONParser],
    )
    def import_csv(self, request: Request) -> Response:
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
        report = services.contacts_import(text=text, actor=request.user)
        return Response(report.as_dict())

    @extend_schema(
        methods=["GET"],
        summary="A contact's consent: current state per topic and the ledger",
        responses={200: OpenApiTypes.OBJECT},
        examples=[response_example("Consent", CONSENT_EXAMPLE)],
    )
    @extend_schema(
        methods=["POST"],
        summary="Record an opt-in or opt-out",
        request=ConsentChangeSerializer,
        responses={200: OpenApiTypes.OBJECT},
        examples=[request_example("Opt out", CONSENT_CHANGE_EXAMPLE)],
    )
    @action(detail=True, methods=["get", "post"])
    def consent(self, request: Request, phone: str) -> Response:
        contact = self.get_object()
        if request.method == "POST":
            payload = _valid(ConsentChangeSerializer, request.data)
            services.consent_change(
                contact=contact, source=ConsentEvent.Source.API, actor=request.user, **payload
            )
            contact.refresh_from_db()
        return Response(selectors.consent_state(contact=contact))


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

    permission_classes = [IsAuthenticated]
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
            request, CampaignWriteSerializer, services.campaign_create, CampaignSerializer
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
        responses={200: OpenApiTypes.OBJECT},
        examples=[response_example("Preview", PREVIEW_EXAMPLE)],
    )
    @action(detail=True, methods=["get"])
    def preview(self, request: Request, pk: str) -> Response:
        return Response(selectors.campaign_preview(campaign=self.get_object()))

    @_campaign_action(
        "Launch: materialise messages and start (or schedule) sending", idempotent=True
    )
    @action(detail=True, methods=["post"])
    def launch(self, request: Request, pk: str) -> HttpResponse:
        campaign = self.get_object()

        def produce() -> tuple[int, Any]:
            launched = services.campaign_launch(campaign=campaign, actor=request.user)
            return 200, CampaignSerializer(launched).data

        return idempotent_response(request, produce)

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
class MessageViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Messages, read-only: the ledger of every send."""

    permission_classes = [IsAuthenticated]
    serializer_class = MessageSerializer
    filterset_class = MessageFilter
    ordering_fields = ["id", "sent_at"]

    def get_queryset(self) -> Any:
        return selectors.message_list()

    def retrieve(self, request: Request, pk: str) -> Response:
        message_id = int(pk) if pk.isdigit() else 0
        message = selectors.message_get(message_id=message_id)
        return Response(MessageDetailSerializer(message).data, status=status.HTTP_200_OK)
