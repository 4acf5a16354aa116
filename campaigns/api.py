"""Contacts, consent, campaigns and messages under /api/v1/: serializers and thin viewsets."""

from typing import Any

from django.conf import settings
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from campaigns import selectors, services
from campaigns.models import Campaign, ConsentEvent, Contact, Message, MessageTransition
from core.errors import InvalidInput
from core.idempotency import idempotent_response

CONFIG_EXAMPLE = {
    "segment": "contact.attributes.plan == 'gold'",
    "template": "Hi {{ contact.attributes.first_name }}, your gold offer is waiting.",
    "topic": "marketing",
    "start_at": None,
    "send_window": {"start": "09:00", "end": "20:00"},
    "rate_per_second": 10,
    "frequency_cap": {"max_messages": 3, "per_hours": 24},
}
PROBLEM_EXAMPLE = OpenApiExample(
    "Invalid field",
    status_codes=["400"],
    response_only=True,
    value={
        "type": "https://decisioning.example/problems/invalid_phone",
        "title": "Invalid phone number",
        "status": 400,
        "detail": "'123' is not a valid phone number.",
        "code": "invalid_phone",
        "errors": {"phone": ["'123' is not a valid phone number."]},
    },
)


# --- contacts ---------------------------------------------------------------------------------


class ContactSerializer(serializers.ModelSerializer):
    class Meta:
        model = Contact
        fields = [
            "phone",
            "attributes",
            "region",
            "time_zone",
            "number_time_zones",
            "opted_out",
            "number_invalid",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class ContactCreateSerializer(serializers.Serializer):
    phone = serializers.CharField(max_length=40)
    attributes = serializers.DictField(required=False, default=dict)
    time_zone = serializers.CharField(required=False, default="", allow_blank=True, max_length=64)
    consent = serializers.DictField(
        child=serializers.BooleanField(),
        required=False,
        default=dict,
        help_text="Topic -> opted in (true) or out (false), recorded in the ledger.",
    )


class ContactUpdateSerializer(serializers.Serializer):
    attributes = serializers.DictField(required=False)
    time_zone = serializers.CharField(required=False, allow_blank=True, max_length=64)


class ConsentChangeSerializer(serializers.Serializer):
    topic = serializers.CharField(max_length=64, help_text="A topic, or '*' for every topic.")
    action = serializers.ChoiceField(choices=ConsentEvent.Action.choices)
    evidence = serializers.DictField(required=False, default=dict)


class ImportReportSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    rejected = serializers.ListField(child=serializers.DictField())


class ContactFilter(filters.FilterSet):
    class Meta:
        model = Contact
        fields = ["opted_out", "number_invalid", "region"]


CONTACT_EXAMPLE = {
    "phone": "+14155552671",
    "attributes": {"first_name": "Ada", "plan": "gold"},
    "region": "US",
    "time_zone": "",
    "number_time_zones": "America/Los_Angeles",
    "opted_out": False,
    "number_invalid": False,
    "created_at": "2026-11-23T10:00:00Z",
    "updated_at": "2026-11-23T10:00:00Z",
}


@extend_schema_view(
    list=extend_schema(
        summary="List contacts",
        examples=[OpenApiExample("Page", value=[CONTACT_EXAMPLE], response_only=True)],
    ),
    retrieve=extend_schema(
        summary="A contact by phone (any form of the number, URL-encoded)",
        examples=[OpenApiExample("Contact", value=CONTACT_EXAMPLE, response_only=True)],
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
        request=ContactCreateSerializer,
        responses={201: ContactSerializer},
        examples=[
            OpenApiExample(
                "New contact",
                request_only=True,
                value={
                    "phone": "(415) 555-2671",
                    "attributes": {"first_name": "Ada", "plan": "gold"},
                    "consent": {"marketing": True},
                },
            ),
            OpenApiExample("Created", value=CONTACT_EXAMPLE, response_only=True),
            PROBLEM_EXAMPLE,
        ],
    )
    def create(self, request: Request) -> Response:
        payload = _valid(ContactCreateSerializer, request.data)

        def produce() -> tuple[int, Any]:
            contact = services.contact_create(**payload, actor=request.user)
            return 201, ContactSerializer(contact).data

        return idempotent_response(request, produce)

    @extend_schema(
        summary="Update a contact's attributes or time-zone override",
        request=ContactUpdateSerializer,
        responses={200: ContactSerializer},
        examples=[
            OpenApiExample(
                "Attributes", request_only=True, value={"attributes": {"plan": "silver"}}
            ),
            OpenApiExample("Updated", value=CONTACT_EXAMPLE, response_only=True),
        ],
    )
    def partial_update(self, request: Request, phone: str) -> Response:
        payload = _valid(ContactUpdateSerializer, request.data)
        contact = services.contact_update(contact=self.get_object(), **payload, actor=request.user)
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
            }
        },
        responses={200: ImportReportSerializer},
        examples=[
            OpenApiExample(
                "Report",
                response_only=True,
                value={
                    "created": 2,
                    "updated": 0,
                    "rejected": [{"line": 3, "errors": ["'12' is not a valid phone number."]}],
                },
            )
        ],
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
        examples=[
            OpenApiExample(
                "Consent",
                response_only=True,
                value={
                    "phone": "+14155552671",
                    "opted_out": False,
                    "topics": {"marketing": "opted_in"},
                    "ledger": [
                        {
                            "topic": "marketing",
                            "action": "opt_in",
                            "source": "api",
                            "evidence": {},
                            "occurred_at": "2026-11-23T10:00:00Z",
                        }
                    ],
                },
            )
        ],
    )
    @extend_schema(
        methods=["POST"],
        summary="Record an opt-in or opt-out",
        request=ConsentChangeSerializer,
        responses={200: OpenApiTypes.OBJECT},
        examples=[
            OpenApiExample(
                "Opt out",
                request_only=True,
                value={"topic": "marketing", "action": "opt_out", "evidence": {"form": "web"}},
            )
        ],
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


class CampaignSerializer(serializers.ModelSerializer):
    class Meta:
        model = Campaign
        fields = [
            "id",
            "name",
            "status",
            "config",
            "created_by",
            "created_at",
            "updated_at",
            "launched_at",
            "finished_at",
            "launch_summary",
        ]
        read_only_fields = fields


class CampaignWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    config = serializers.JSONField()


class CampaignUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    config = serializers.JSONField(required=False)


CAMPAIGN_EXAMPLE = {
    "id": 7,
    "name": "Gold offer",
    "status": "draft",
    "config": CONFIG_EXAMPLE,
    "created_by": "api-key:crm",
    "created_at": "2026-11-23T10:00:00Z",
    "updated_at": "2026-11-23T10:00:00Z",
    "launched_at": None,
    "finished_at": None,
    "launch_summary": {},
}
PREVIEW_EXAMPLE = {
    "contacts": 300,
    "matched": 120,
    "eligible": 101,
    "excluded": {
        "invalid_number": 1,
        "opted_out": 4,
        "no_consent": 12,
        "frequency_cap": 2,
        "template_error": 0,
        "no_send_window": 0,
    },
    "segment_errors": 0,
    "samples": [
        {
            "phone": "+14155552671",
            "body": "Hi Ada, your gold offer is waiting.",
            "characters": 35,
            "encoding": "GSM-7",
            "segments": 1,
            "send_after": "2026-11-23T17:00:00+00:00",
        }
    ],
    "template_errors": [],
}
STATS_EXAMPLE = {
    "campaign": 7,
    "status": "running",
    "total": 120,
    "counts": {"pending": 10, "sent": 5, "delivered": 80, "undelivered": 3, "canceled": 19},
    "in_flight": 10,
    "final": 102,
    "delivery_rate": 0.9639,
    "failures_by_error_code": {"30003": 3},
    "canceled_by_reason": {"no_consent": 12},
    "sent_per_minute": [{"minute": "2026-11-23T17:00:00Z", "sent": 88}],
}


def _campaign_action(summary: str) -> Any:
    return extend_schema(
        summary=summary,
        request=None,
        responses={200: CampaignSerializer},
        examples=[OpenApiExample("Campaign", value=CAMPAIGN_EXAMPLE, response_only=True)],
    )


@extend_schema_view(
    list=extend_schema(
        summary="List campaigns",
        examples=[OpenApiExample("Page", value=[CAMPAIGN_EXAMPLE], response_only=True)],
    ),
    retrieve=extend_schema(
        summary="A campaign",
        examples=[OpenApiExample("Campaign", value=CAMPAIGN_EXAMPLE, response_only=True)],
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
        request=CampaignWriteSerializer,
        responses={201: CampaignSerializer},
        examples=[
            OpenApiExample(
                "Draft", request_only=True, value={"name": "Gold offer", "config": CONFIG_EXAMPLE}
            ),
            OpenApiExample("Created", value=CAMPAIGN_EXAMPLE, response_only=True),
        ],
    )
    def create(self, request: Request) -> Response:
        payload = _valid(CampaignWriteSerializer, request.data)

        def produce() -> tuple[int, Any]:
            campaign = services.campaign_create(**payload, actor=request.user)
            return 201, CampaignSerializer(campaign).data

        return idempotent_response(request, produce)

    @extend_schema(
        summary="Update a draft campaign (409 once launched)",
        request=CampaignUpdateSerializer,
        responses={200: CampaignSerializer},
        examples=[
            OpenApiExample("Rename", request_only=True, value={"name": "Gold offer (v2)"}),
            OpenApiExample("Updated", value=CAMPAIGN_EXAMPLE, response_only=True),
        ],
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        payload = _valid(CampaignUpdateSerializer, request.data)
        campaign = services.campaign_update(
            campaign=self.get_object(), **payload, actor=request.user
        )
        return Response(CampaignSerializer(campaign).data)

    @extend_schema(
        summary="Preview: matched, eligible, exclusions by reason, first rendered messages",
        responses={200: OpenApiTypes.OBJECT},
        examples=[OpenApiExample("Preview", value=PREVIEW_EXAMPLE, response_only=True)],
    )
    @action(detail=True, methods=["get"])
    def preview(self, request: Request, pk: str) -> Response:
        return Response(selectors.campaign_preview(campaign=self.get_object()))

    @_campaign_action("Launch: materialise messages and start (or schedule) sending")
    @action(detail=True, methods=["post"])
    def launch(self, request: Request, pk: str) -> Response:
        campaign = self.get_object()

        def produce() -> tuple[int, Any]:
            launched = services.campaign_launch(campaign=campaign, actor=request.user)
            return 200, CampaignSerializer(launched).data

        return idempotent_response(request, produce)

    @_campaign_action("Pause: no new sends within a second")
    @action(detail=True, methods=["post"])
    def pause(self, request: Request, pk: str) -> Response:
        campaign = services.campaign_pause(campaign=self.get_object(), actor=request.user)
        return Response(CampaignSerializer(campaign).data)

    @_campaign_action("Resume a paused campaign")
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: str) -> Response:
        campaign = services.campaign_resume(campaign=self.get_object(), actor=request.user)
        return Response(CampaignSerializer(campaign).data)

    @_campaign_action("Cancel: every message not yet sent is canceled")
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        campaign = services.campaign_cancel(campaign=self.get_object(), actor=request.user)
        return Response(CampaignSerializer(campaign).data)

    @extend_schema(
        summary="Counts by status, delivery rate, failures by error code, sends per minute",
        responses={200: OpenApiTypes.OBJECT},
        examples=[OpenApiExample("Stats", value=STATS_EXAMPLE, response_only=True)],
    )
    @action(detail=True, methods=["get"])
    def stats(self, request: Request, pk: str) -> Response:
        return Response(selectors.campaign_stats(campaign=self.get_object()))


# --- messages ---------------------------------------------------------------------------------


class TransitionSerializer(serializers.ModelSerializer):
    class Meta:
        model = MessageTransition
        fields = ["from_status", "to_status", "source", "detail", "occurred_at"]


class MessageSerializer(serializers.ModelSerializer):
    phone = serializers.CharField(source="contact.phone")

    class Meta:
        model = Message
        fields = [
            "id",
            "campaign",
            "phone",
            "reference",
            "topic",
            "status",
            "body",
            "segments",
            "send_after",
            "sent_at",
            "finished_at",
            "attempts",
            "provider",
            "provider_sid",
            "error_code",
            "cancel_reason",
        ]


class MessageDetailSerializer(MessageSerializer):
    transitions = TransitionSerializer(many=True)

    class Meta(MessageSerializer.Meta):
        fields = [*MessageSerializer.Meta.fields, "error_message", "transitions"]


class MessageFilter(filters.FilterSet):
    phone = filters.CharFilter(field_name="contact__phone")

    class Meta:
        model = Message
        fields = ["campaign", "status", "reference", "topic"]


MESSAGE_EXAMPLE = {
    "id": 42,
    "campaign": 7,
    "phone": "+14155552671",
    "reference": None,
    "topic": "marketing",
    "status": "delivered",
    "body": "Hi Ada, your gold offer is waiting.",
    "segments": 1,
    "send_after": "2026-11-23T17:00:00Z",
    "sent_at": "2026-11-23T17:00:01Z",
    "finished_at": "2026-11-23T17:00:04Z",
    "attempts": 1,
    "provider": "twilio",
    "provider_sid": "SM0123456789abcdef0123456789abcdef",
    "error_code": "",
    "cancel_reason": "",
}


@extend_schema_view(
    list=extend_schema(
        summary="List messages (filter by campaign, status, phone, reference)",
        parameters=[OpenApiParameter("phone", str, description="E.164 number")],
        examples=[OpenApiExample("Page", value=[MESSAGE_EXAMPLE], response_only=True)],
    ),
    retrieve=extend_schema(
        summary="A message with its transitions",
        responses={200: MessageDetailSerializer},
        examples=[
            OpenApiExample(
                "Message",
                response_only=True,
                value={
                    **MESSAGE_EXAMPLE,
                    "error_message": "",
                    "transitions": [
                        {
                            "from_status": "pending",
                            "to_status": "queued",
                            "source": "dispatcher",
                            "detail": {},
                            "occurred_at": "2026-11-23T17:00:00Z",
                        }
                    ],
                },
            )
        ],
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


def _valid(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


router = SimpleRouter()
router.register("contacts", ContactViewSet, basename="contact")
router.register("campaigns", CampaignViewSet, basename="campaign")
router.register("messages", MessageViewSet, basename="message")

urlpatterns = router.urls
