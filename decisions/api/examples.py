"""OpenAPI examples of the decisions API: realistic values, one list per operation.

A list operation's example is one item: drf-spectacular wraps it in the pagination envelope.
"""

from typing import Any

from drf_spectacular.utils import OpenApiExample

from decisions.api.serializers import DecisionSummarySerializer

# --- Events and decisions ----------------------------------------------------------------------

TRACE = [
    {
        "version_id": 12,
        "rule": "blocked-country",
        "version": 3,
        "status": "published",
        "priority": 10,
        "outcome": "decline",
        "result": "true",
        "decided": True,
    },
    {
        "version_id": 15,
        "rule": "high-amount",
        "version": 2,
        "status": "shadow",
        "priority": 20,
        "outcome": "review",
        "result": "error",
        "error": "EvaluationError: KeyError: 'amount'",
        "decided": False,
    },
]
DECISION: dict[str, Any] = {
    "id": 981,
    "event_id": 1204,
    "event_type": "loan_application",
    "outcome": "decline",
    "matched_rule": {"key": "blocked-country", "version": 3},
    "shadow_outcome": "decline",
    "policy": {
        "event_type": "loan_application",
        "strategy": "first_match",
        "default_outcome": "approve",
        "precedence": ["decline", "review", "approve"],
    },
    "trace": TRACE,
    "lists_snapshot": {"blocked_countries": {"version": 4, "values": ["KP", "IR"]}},
    "actions": [],
    "engine_us": 18.6,
    "risk": None,
    "reasons": [
        {"kind": "rule", "code": "blocked-country", "text": "Applicant in a blocked country"}
    ],
    "history": {"velocity": {"applications_1h": 2}},
    "arms": {},
    "decided_at": "2026-11-23T15:04:05.123456Z",
}
# A real applicant of the German Credit data (row 1), as the credit-default model expects it.
APPLICANT = {
    "checking_account": "... < 0 DM",
    "duration_months": 6,
    "credit_history": "critical account/ other credits existing (not at this bank)",
    "purpose": "radio/television",
    "credit_amount": 1169,
    "savings": "unknown/ no savings account",
    "employment_since": "... >= 7 years",
    "installment_rate": 4,
    "personal_status_sex": "male : divorced/separated",
    "other_debtors": "none",
    "residence_since": 4,
    "property": "real estate",
    "age": 67,
    "other_installment_plans": "none",
    "housing": "own",
    "existing_credits": 2,
    "job": "skilled employee / official",
    "dependents": 1,
    "telephone": True,
    "foreign_worker": True,
}

EVENT_CREATE = [
    OpenApiExample(
        "Loan application",
        request_only=True,
        value={
            "type": "loan_application",
            "payload": {"amount": 25000, "country": "DE", "age": 34},
        },
    ),
    OpenApiExample(
        "Scored with a risk model (rules read risk.score, risk.label)",
        request_only=True,
        value={
            "type": "loan_application",
            "payload": {"amount": 25000, "country": "DE", "phone": "+4915123456789"},
            "risk": {"model_id": "credit-default", "features": APPLICANT},
        },
    ),
    OpenApiExample(
        "Decided",
        response_only=True,
        status_codes=["201"],
        value={"event_id": 1204, "decision": DECISION},
    ),
]
DECISION_LIST = [
    OpenApiExample(
        "A page",
        response_only=True,
        value={key: DECISION[key] for key in DecisionSummarySerializer.Meta.fields},
    )
]
DECISION_RETRIEVE = [
    OpenApiExample(
        "Decision",
        response_only=True,
        value={
            **DECISION,
            "event": {
                "id": 1204,
                "type": "loan_application",
                "payload": {"amount": 25000, "country": "KP"},
                "risk": None,
                "idempotency_key": "9b1f7c2e-loan-1204",
                "received_at": "2026-11-23T15:04:05.120001Z",
            },
        },
    )
]
DECISION_REPLAY = [
    OpenApiExample(
        "Reproduced",
        response_only=True,
        value={
            "decision_id": 981,
            "matches": True,
            "differences": [],
            "stored": {"outcome": "decline", "matched_version_id": 12},
            "replayed": {
                "outcome": "decline",
                "matched_version_id": 12,
                "shadow_outcome": "decline",
                "trace": TRACE,
                "engine_us": 11.2,
            },
        },
    )
]

# --- Rules -------------------------------------------------------------------------------------

VERSION = {
    "number": 3,
    "status": "published",
    "condition": "event.country in lists.blocked_countries",
    "outcome": "decline",
    "priority": 10,
    "actions": [],
    "effective_from": None,
    "effective_until": None,
    "list_names": ["blocked_countries"],
    "velocity_names": [],
    "reads_similar": False,
    "canary_percent": None,
    "canary_key": "",
    "author_label": "staff",
    "change_note": "Use the shared list.",
    "created_at": "2026-11-22T10:00:00Z",
    "status_changed_at": "2026-11-22T10:05:00Z",
    "approval": {
        "status": "approved",
        "requested_by_label": "editor",
        "request_note": "Decline sanctioned countries from the shared list.",
        "requested_at": "2026-11-22T10:01:00Z",
        "decided_by_label": "approver",
        "decision_note": "Checked against the sanctions memo.",
        "decided_at": "2026-11-22T10:04:00Z",
    },
}
RULE = {
    "key": "blocked-country",
    "name": "Applicant in a blocked country",
    "description": "Sanctioned countries are declined.",
    "event_type": "loan_application",
    "created_at": "2026-11-20T09:00:00Z",
    "published_version": 3,
    "shadow_version": None,
    "scheduled_version": None,
    "canary_version": None,
    "versions": [VERSION],
}

RULE_LIST = [OpenApiExample("A page", response_only=True, value=RULE)]
RULE_RETRIEVE = [OpenApiExample("Rule", response_only=True, value=RULE)]
RULE_CREATE = [
    OpenApiExample(
        "New rule",
        request_only=True,
        value={
            "key": "blocked-country",
            "name": "Applicant in a blocked country",
            "event_type": "loan_application",
        },
    ),
    OpenApiExample("Created", response_only=True, value={**RULE, "versions": []}),
]
RULE_VERSION_CREATE = [
    OpenApiExample(
        "Draft",
        request_only=True,
        value={
            "condition": "event.amount > 50000 && !(event.customer_id in lists.trusted)",
            "outcome": "review",
            "priority": 30,
            "actions": [
                {
                    "type": "sms",
                    "template": "loan-under-review",  # an approved SMS template's key
                    "to": "event.phone",
                }
            ],
            "change_note": "Large loans from unknown customers get a human look.",
        },
    ),
    OpenApiExample("Created", response_only=True, status_codes=["201"], value=VERSION),
    OpenApiExample(
        "CEL error",
        response_only=True,
        status_codes=["400"],
        value={
            "type": "https://decisioning.example/problems/invalid_expression",
            "title": "Invalid expression",
            "status": 400,
            "detail": "Syntax error: mismatched input '<EOF>' expecting ...",
            "code": "invalid_expression",
            "errors": {"condition": ["Syntax error: mismatched input '<EOF>' expecting ..."]},
            "line": 1,
            "column": 15,
        },
    ),
]
RULE_VERSION_TRANSITION = [OpenApiExample("Version", response_only=True, value=VERSION)]
RULE_VERSION_CANARY = [
    OpenApiExample(
        "Ten percent of customers", request_only=True, value={"percent": 10, "key": "customer_id"}
    ),
    OpenApiExample(
        "Version",
        response_only=True,
        value={
            **VERSION,
            "number": 4,
            "status": "canary",
            "condition": "event.country in lists.blocked_countries || velocity.applications_1h > 3",
            "list_names": ["blocked_countries"],
            "velocity_names": ["applications_1h"],
            "canary_percent": 10,
            "canary_key": "customer_id",
            "approval": None,
        },
    ),
]
VELOCITY_AGGREGATE = {
    "id": 3,
    "event_type": "loan_application",
    "name": "applications_1h",
    "function": "count",
    "key_field": "customer_id",
    "field": "",
    "window_seconds": 3600,
}
VELOCITY_AGGREGATE_LIST = [OpenApiExample("A page", response_only=True, value=VELOCITY_AGGREGATE)]
VELOCITY_AGGREGATE_CREATE = [
    OpenApiExample(
        "A customer's applications in the last hour",
        request_only=True,
        value={key: VELOCITY_AGGREGATE[key] for key in VELOCITY_AGGREGATE if key != "id"},
    ),
    OpenApiExample(
        "Amount per customer in a day",
        request_only=True,
        value={
            "event_type": "payment",
            "name": "amount_24h",
            "function": "sum",
            "key_field": "customer_id",
            "field": "amount",
            "window_seconds": 86400,
        },
    ),
    OpenApiExample("Declared", response_only=True, value=VELOCITY_AGGREGATE),
]
RULE_VERSION_APPROVAL = [
    OpenApiExample("Note", request_only=True, value={"note": "Checked against the memo."}),
    *RULE_VERSION_TRANSITION,
]

# --- Backtests ---------------------------------------------------------------------------------

BACKTEST = {
    "id": 7,
    "status": "completed",
    "candidates": [{"rule_key": "high-amount", "version": 4, "version_id": 31}],
    "event_types": ["loan_application"],
    "window_start": "2026-11-01T00:00:00Z",
    "window_end": "2026-11-23T00:00:00Z",
    "total": 1200,
    "processed": 1200,
    "progress": 1.0,
    "results": {
        "evaluated": 1200,
        "changed": 42,
        "unchanged": 1158,
        "candidate_errors": 0,
        "transitions": [
            {"from": "approve", "to": "review", "count": 42, "example_event_ids": [1031, 1077]}
        ],
    },
    "error": "",
    "created_at": "2026-11-23T15:00:00Z",
    "finished_at": "2026-11-23T15:00:02Z",
}
BACKTEST_CREATE = [
    OpenApiExample(
        "One draft over the last 30 days",
        description="Without window_start and window_end the window is the last 30 days.",
        request_only=True,
        value={"rule_key": "high-amount", "version": 4},
    ),
    OpenApiExample(
        "One draft over a window",
        request_only=True,
        value={
            "rule_key": "high-amount",
            "version": 4,
            "window_start": "2026-11-01T00:00:00Z",
            "window_end": "2026-11-23T00:00:00Z",
        },
    ),
    OpenApiExample(
        "A candidate set",
        request_only=True,
        value={
            "candidates": [
                {"rule_key": "high-amount", "version": 4},
                {"rule_key": "young-applicant", "version": 2},
            ],
            "window_start": "2026-11-01T00:00:00Z",
            "window_end": "2026-11-23T00:00:00Z",
        },
    ),
    OpenApiExample("Result", response_only=True, value=BACKTEST),
]
BACKTEST_RETRIEVE = [OpenApiExample("Result", response_only=True, value=BACKTEST)]
