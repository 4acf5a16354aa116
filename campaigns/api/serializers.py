"""Serializers of the campaigns API: what goes in (validated here, then by the services) and
what comes out (numbers and bodies masked unless the view says the caller may see them)."""

from collections.abc import Callable
from typing import Any

from rest_framework import serializers

from campaigns.models import Campaign, ConsentEvent, Contact, Message, MessageTransition
from campaigns.pii import body_shown, numbers_shown, phone_shown
from campaigns.services.contacts import REASON_MAX_CHARS


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


class CampaignWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    config = serializers.JSONField()


class CampaignUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    config = serializers.JSONField(required=False)


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
