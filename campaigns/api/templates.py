"""SMS templates under /api/v1/sms-templates/: what rule actions may send, once approved.

Anyone with campaigns:write drafts and edits a template; approval is a person's act (a
campaign manager: campaigns:launch), never a key's, and freezes the text.
"""

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from campaigns import services
from campaigns.exceptions import SmsTemplateNotFound
from campaigns.models import SmsTemplate
from campaigns.services.templates import KEY_PATTERN
from core.access import Scope
from core.idempotency import idempotent_response
from core.permissions import ScopeRequired
from core.serializers import StrictSerializer


class SmsTemplateSerializer(serializers.ModelSerializer):
    approved = serializers.BooleanField(read_only=True)

    class Meta:
        model = SmsTemplate
        fields = [
            "key",
            "body",
            "description",
            "approved",
            "approved_by_label",
            "approved_at",
            "created_by",
            "created_at",
        ]
        read_only_fields = fields


class SmsTemplateWriteSerializer(StrictSerializer):
    key = serializers.RegexField(
        KEY_PATTERN.pattern, max_length=64, help_text="Lower-case letters, digits, '-' or '_'."
    )
    body = serializers.CharField(
        max_length=1600,
        trim_whitespace=False,
        help_text="Jinja; refused when it renders over 1,600 characters or 10 SMS segments.",
    )
    description = serializers.CharField(
        max_length=200, required=False, default="", allow_blank=True
    )


class SmsTemplateUpdateSerializer(StrictSerializer):
    body = serializers.CharField(max_length=1600, trim_whitespace=False)
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)


class SmsTemplateViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """SMS templates by key: draft (campaigns:write), approve (a person with campaigns:launch)."""

    permission_classes = [ScopeRequired]
    required_scopes = {
        "list": Scope.CAMPAIGNS_READ,
        "retrieve": Scope.CAMPAIGNS_READ,
        "create": Scope.CAMPAIGNS_WRITE,
        "partial_update": Scope.CAMPAIGNS_WRITE,
        "approve": Scope.CAMPAIGNS_LAUNCH,
    }
    serializer_class = SmsTemplateSerializer
    lookup_field = "key"
    queryset = SmsTemplate.objects.order_by("key")

    def get_object(self) -> SmsTemplate:
        template = services.sms_template_get(key=self.kwargs["key"])
        if template is None:
            raise SmsTemplateNotFound(f"No SMS template {self.kwargs['key']!r}.")
        return template

    @extend_schema(
        summary="Draft an SMS template (not sendable by rules until approved)",
        request=SmsTemplateWriteSerializer,
        responses={201: SmsTemplateSerializer},
    )
    def create(self, request: Request) -> Any:
        incoming = SmsTemplateWriteSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)

        def produce() -> tuple[int, Any]:
            template = services.sms_template_create(**incoming.validated_data, actor=request.user)
            return 201, SmsTemplateSerializer(template).data

        return idempotent_response(request, produce)

    @extend_schema(
        summary="Change the text of a template not yet approved (409 once approved)",
        request=SmsTemplateUpdateSerializer,
        responses={200: SmsTemplateSerializer},
    )
    def partial_update(self, request: Request, key: str) -> Response:
        template = self.get_object()  # an unknown key is a 404 whatever the body
        incoming = SmsTemplateUpdateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        template = services.sms_template_update(
            template=template, **incoming.validated_data, actor=request.user
        )
        return Response(SmsTemplateSerializer(template).data)

    @extend_schema(
        summary="Approve: rule actions may send it from now on (a person with campaigns:launch)",
        request=None,
        responses={200: SmsTemplateSerializer},
    )
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, key: str) -> Response:
        template = services.sms_template_approve(template=self.get_object(), actor=request.user)
        return Response(SmsTemplateSerializer(template).data)
