"""OpenAPI example data of the campaigns API (what integrators read in /api/docs/).

A list endpoint's example is one item: drf-spectacular wraps it in the page envelope itself.
"""

from typing import Any

from drf_spectacular.utils import OpenApiExample

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

CONTACT_EXAMPLE = {
    "phone": "+14155552671",
    "attributes": {"first_name": "Ada", "plan": "gold"},
    "region": "US",
    "time_zone": "",
    "number_time_zones": "America/Los_Angeles",
    "opted_out": False,
    "number_invalid": False,
    "erased_at": None,
    "created_at": "2026-11-23T10:00:00Z",
    "updated_at": "2026-11-23T10:00:00Z",
}
CONTACT_CREATE_EXAMPLE = {
    "phone": "(415) 555-2671",
    "attributes": {"first_name": "Ada", "plan": "gold"},
    "consent": {"marketing": True},
}
IMPORT_REPORT_EXAMPLE = {
    "created": 2,
    "updated": 0,
    "rejected": [{"line": 3, "errors": ["'12' is not a valid phone number."]}],
}
CONSENT_EXAMPLE = {
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
}
CONSENT_CHANGE_EXAMPLE = {"topic": "marketing", "action": "opt_out", "evidence": {"form": "web"}}
CONSENT_OVERRIDE_EXAMPLE = {
    "topic": "*",
    "action": "opt_in",
    "evidence": {"ticket": "DPO-1182"},
    "reason": "Signed consent received by post; the STOP came from a former owner of the number.",
}
ERASE_EXAMPLE = {"reason": "Erasure request DPO-1183 (GDPR art. 17), identity verified."}
ERASURE_EXAMPLE = {
    "contact": 42,
    "phone_hash": "5c1f0e6d0f2a4b8e9a7d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f",
    "messages_erased": 12,
    "messages_canceled": 1,
    "consent_events_kept": 3,
    "webhooks_erased": 4,
}

# --- campaigns --------------------------------------------------------------------------------

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

# --- messages ---------------------------------------------------------------------------------

MESSAGE_EXAMPLE: dict[str, Any] = {
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
MESSAGE_DETAIL_EXAMPLE = {
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
}


def response_example(name: str, value: Any) -> OpenApiExample:
    """A response example; for a list endpoint, pass one item (the page envelope is added)."""
    return OpenApiExample(name, value=value, response_only=True)


def request_example(name: str, value: Any) -> OpenApiExample:
    return OpenApiExample(name, value=value, request_only=True)
