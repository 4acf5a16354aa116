"""Serializers of the campaigns API: what goes in (validated here, then by the services) and
what comes out (numbers and bodies masked unless the view says the caller may see them)."""

from collections.abc import Callable
from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from campaigns.config import MAX_TEMPLATE_LENGTH, TOPIC_PATTERN
from campaigns.models import Campaign, ConsentEvent, Contact, Message, MessageTransition
from campaigns.pii import body_shown, numbers_shown, phone_shown
from campaigns.services.contacts import REASON_MAX_CHARS
from core.serializers import StrictSerializer


class MaskedFieldsMixin:
    """Fields in `masked_fields` pass through their mask unless the context says `mask=False`
    (the view decides, from the caller's `pii:read`); without a decision they are masked."""

    masked_fields: dict[str, Callable[..., str]] = {}
    context: dict[str, Any]

    def to_representation(self, instance: Any) -> Any:
        data = super().to_representation(instance)  # type: ignore[misc]
        mask = self.context.get("mask", True)
        for name, shown in self.masked_fields.items():
            if data.get(name):
                data[name] = shown(data[name], mask=mask)
        return data


# --- contacts ---------------------------------------------------------------------------------


class ContactSerializer(MaskedFieldsMixin, serializers.ModelSerializer):
    masked_fields = {"phone": phone_shown}

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
            "erased_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


# The shape of an IANA name ("UTC", "America/Argentina/Buenos_Aires", "Etc/GMT+5").
TIME_ZONE_PATTERN = r"^([A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*)?$"
TIME_ZONE_HELP = (
    "An IANA time-zone name (e.g. Europe/London) that overrides the zones read from the "
    "number; empty keeps them. A name the zone database does not know answers 400."
)
PHONE_HELP = (
    "Any written form of a valid number (E.164 such as +14155552671 is safest; without a "
    "leading + it is read in CAMPAIGNS_DEFAULT_REGION). An invalid number answers 400."
)
ATTRIBUTES_HELP = "Free-form attributes for segments; at most 10,000 characters of JSON."


class ContactCreateSerializer(StrictSerializer):
    phone = serializers.CharField(max_length=40, help_text=PHONE_HELP)
    attributes = serializers.DictField(required=False, default=dict, help_text=ATTRIBUTES_HELP)
    time_zone = serializers.RegexField(
        TIME_ZONE_PATTERN,
        max_length=64,
        required=False,
        default="",
        allow_blank=True,
        help_text=TIME_ZONE_HELP,
    )
    consent = serializers.DictField(
        child=serializers.BooleanField(),
        required=False,
        default=dict,
        help_text="Topic -> opted in (true) or out (false), recorded in the ledger.",
    )


class ContactUpdateSerializer(StrictSerializer):
    attributes = serializers.DictField(required=False, help_text=ATTRIBUTES_HELP)
    time_zone = serializers.RegexField(
        TIME_ZONE_PATTERN,
        max_length=64,
        required=False,
        allow_blank=True,
        help_text=TIME_ZONE_HELP,
    )


class ConsentChangeSerializer(StrictSerializer):
    topic = serializers.CharField(max_length=64, help_text="A topic, or '*' for every topic.")
    action = serializers.ChoiceField(choices=ConsentEvent.Action.choices)
    evidence = serializers.DictField(required=False, default=dict)
    reason = serializers.CharField(
        required=False,
        default="",
        allow_blank=True,
        max_length=REASON_MAX_CHARS,
        help_text="Required to reverse an opt-out (compliance only); kept in the ledger.",
    )


class EraseSerializer(serializers.Serializer):
    reason = serializers.CharField(
        max_length=REASON_MAX_CHARS, help_text="Kept in the audit trail."
    )


class ErasureSerializer(serializers.Serializer):
    contact = serializers.IntegerField()
    phone_hash = serializers.CharField(
        help_text="Salted hash of the erased number (the ledger's key)."
    )
    messages_erased = serializers.IntegerField()
    messages_canceled = serializers.IntegerField()
    consent_events_kept = serializers.IntegerField()
    webhooks_erased = serializers.IntegerField()


class ImportReportSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    rejected = serializers.ListField(child=serializers.DictField())


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


_HH_MM = {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$"}
CAMPAIGN_CONFIG_SCHEMA = {
    "type": "object",
    "description": (
        "Checked as a whole when saved: `segment` must compile as CEL over `contact`, "
        "`template` as a sandboxed Jinja template, and the send window must not be empty "
        "(start equal to end); each problem answers 400 under `config.<field>`."
    ),
    "additionalProperties": False,
    "required": ["template"],
    "properties": {
        "segment": {"type": "string", "default": "true", "description": "CEL over `contact`."},
        "template": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_TEMPLATE_LENGTH,
            "pattern": "\\S",
            "description": "Jinja (sandboxed, undefined variables are errors).",
        },
        "topic": {"type": "string", "pattern": TOPIC_PATTERN.pattern, "default": "marketing"},
        "start_at": {
            "oneOf": [
                {"type": "string", "format": "date-time"},
                {"type": "string", "maxLength": 0},
                {"type": "null"},
            ],
            "description": "When to start sending (with a UTC offset); empty or null: at launch.",
        },
        "send_window": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"start": _HH_MM, "end": _HH_MM},
            "description": "HH:MM in the recipient's local time; may wrap midnight.",
        },
        "rate_per_second": {
            "type": "integer",
            "minimum": 1,
            "maximum": settings.CAMPAIGNS_MAX_RATE_PER_SECOND,
        },
        "frequency_cap": {
            "type": ["object", "null"],
            "additionalProperties": False,
            "required": ["max_messages"],
            "properties": {
                "max_messages": {"type": "integer", "minimum": 1, "maximum": 100},
                "per_hours": {"type": "integer", "minimum": 1, "maximum": 24 * 31},
            },
        },
    },
}


@extend_schema_field(CAMPAIGN_CONFIG_SCHEMA)
class CampaignConfigField(serializers.DictField):
    """A campaign's config: an object, validated as a whole by the campaigns service."""


class CampaignWriteSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200)
    config = CampaignConfigField()


class CampaignUpdateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200, required=False)
    config = CampaignConfigField(required=False)


# --- messages ---------------------------------------------------------------------------------


class TransitionSerializer(serializers.ModelSerializer):
    class Meta:
        model = MessageTransition
        fields = ["from_status", "to_status", "source", "detail", "occurred_at"]


class MessageSerializer(MaskedFieldsMixin, serializers.ModelSerializer):
    phone = serializers.CharField(source="contact.phone")
    masked_fields = {"phone": phone_shown, "body": body_shown, "error_message": numbers_shown}

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
