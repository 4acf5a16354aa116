"""The campaign draft form of the pages: one field per config key, assembled into the config
the API and admin send, so `campaign_create` / `campaign_update` validate all three alike."""

from datetime import datetime
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from campaigns.config import DEFAULT_WINDOW_RAW
from campaigns.models import Campaign
from core.errors import DomainError

# Where a service's error key (`config.send_window.start`) lands in this form.
ERROR_FIELDS = {
    "name": "name",
    "config.segment": "segment",
    "config.template": "template",
    "template": "template",
    "config.topic": "topic",
    "config.start_at": "start_at",
    "config.send_window": "window_start",
    "config.send_window.start": "window_start",
    "config.send_window.end": "window_end",
    "config.rate_per_second": "rate_per_second",
    "config.frequency_cap": "cap_messages",
}


class CampaignDraftForm(forms.Form):
    """Parses what the browser sends; the service judges it (a DomainError names the fields)."""

    name = forms.CharField(max_length=200)
    segment = forms.CharField(
        required=False,
        initial="true",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="CEL over contact, e.g. contact.attributes.plan == 'gold'. "
        "Empty or true: every contact.",
    )
    template = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Jinja, e.g. Hi {{ contact.attributes.first_name }}. At most 1,600 characters.",
    )
    topic = forms.CharField(
        initial="marketing", help_text="The consent topic recipients opted in to."
    )
    start_at = forms.DateTimeField(
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    window_start = forms.CharField(
        initial=DEFAULT_WINDOW_RAW["start"],
        widget=forms.TimeInput(attrs={"type": "time"}),
        label="Send window from",
        help_text="Quiet hours: messages go out only in this window, recipient's local time.",
    )
    window_end = forms.CharField(
        initial=DEFAULT_WINDOW_RAW["end"],
        widget=forms.TimeInput(attrs={"type": "time"}),
        label="Send window until",
    )
    rate_per_second = forms.IntegerField(
        initial=10, label="Rate", help_text="SMS segments per second."
    )
    cap_messages = forms.IntegerField(
        required=False,
        label="Frequency cap: messages",
        help_text="At most this many messages per contact (any campaign); empty: no cap.",
    )
    cap_hours = forms.IntegerField(required=False, initial=24, label="Frequency cap: per hours")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        zone = timezone.get_current_timezone_name()
        self.fields["start_at"].help_text = f"Empty: as soon as it is launched. Time zone {zone}."

    @classmethod
    def for_campaign(cls, campaign: Campaign) -> "CampaignDraftForm":
        """The form filled from a stored draft."""
        config = campaign.config
        window = config.get("send_window") or DEFAULT_WINDOW_RAW
        cap = config.get("frequency_cap") or {}
        return cls(
            initial={
                "name": campaign.name,
                "segment": config.get("segment", "true"),
                "template": config.get("template", ""),
                "topic": config.get("topic", "marketing"),
                "start_at": _local(config.get("start_at")),
                "window_start": window.get("start", DEFAULT_WINDOW_RAW["start"]),
                "window_end": window.get("end", DEFAULT_WINDOW_RAW["end"]),
                "rate_per_second": config.get("rate_per_second", 10),
                "cap_messages": cap.get("max_messages"),
                "cap_hours": cap.get("per_hours", 24),
            }
        )

    def config(self) -> dict[str, Any]:
        """The config as the API takes it (call once the form is valid)."""
        data = self.cleaned_data
        start_at = data.get("start_at")
        cap = None
        if data.get("cap_messages") is not None:
            cap = {"max_messages": data["cap_messages"], "per_hours": data.get("cap_hours") or 24}
        return {
            "segment": data.get("segment") or "true",
            "template": data.get("template", ""),
            "topic": data.get("topic", ""),
            "start_at": start_at.isoformat() if start_at else None,
            "send_window": {"start": data.get("window_start"), "end": data.get("window_end")},
            "rate_per_second": data.get("rate_per_second"),
            "frequency_cap": cap,
        }

    def add_domain_error(self, error: DomainError) -> None:
        """A service's refusal, on the fields it names (the rest on the form as a whole)."""
        for key, problems in (error.errors or {"__all__": [error.detail]}).items():
            self.add_error(ERROR_FIELDS.get(key), problems)


def _local(stored: Any) -> datetime | None:
    """A stored ISO start time as the viewer's wall-clock time (what datetime-local shows)."""
    moment = parse_datetime(stored) if isinstance(stored, str) else None
    return timezone.localtime(moment).replace(tzinfo=None) if moment else None


def live_config(data: Any) -> dict[str, Any]:
    """The config as typed so far, for the live count and preview (no form validation: the
    config parser names what is wrong, and only the field being shown is reported)."""
    return {
        "segment": data.get("segment", "").strip() or "true",
        "template": data.get("template", ""),
        "topic": data.get("topic", "").strip() or "marketing",
    }
