"""Serializers of the campaigns API: what goes in (validated here, then by the services) and
what comes out."""

from rest_framework import serializers

from campaigns.models import Campaign, ConsentEvent, Contact, Message, MessageTransition

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
