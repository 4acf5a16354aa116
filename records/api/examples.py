"""OpenAPI examples of the records API (values a real German Credit applicant produces).

A list endpoint's example is one item: drf-spectacular wraps it in the pagination envelope.
"""

from typing import Any

from drf_spectacular.utils import OpenApiExample

from core.schema import problem_example

FEATURES: dict[str, Any] = {
    "checking_account": "no checking account",
    "duration_months": 18,
    "credit_history": "existing credits paid back duly till now",
    "purpose": "radio/television",
    "credit_amount": 2319,
    "savings": "... < 100 DM",
    "employment_since": "1 <= ... < 4 years",
    "installment_rate": 3,
    "personal_status_sex": "male : single",
    "other_debtors": "none",
    "residence_since": 3,
    "property": "car or other, not in attribute Savings account/bonds",
    "age": 33,
    "other_installment_plans": "none",
    "housing": "own",
    "existing_credits": 1,
    "job": "skilled employee / official",
    "dependents": 1,
    "telephone": False,
    "foreign_worker": True,
}
DRIVERS = [
    {"feature": "checking_account", "value": "no checking account", "contribution": -0.855},
    {"feature": "savings", "value": "... < 100 DM", "contribution": 0.284},
    {"feature": "purpose", "value": "radio/television", "contribution": -0.219},
]
_RECORD_SUMMARY = {
    "id": 1042,
    "created_at": "2026-11-23T15:30:00Z",
    "model_id": "credit-default",
    "model_version": 1,
    "risk_score": 0.138,
    "risk_label": "low",
    "source": "api",
    "event_id": None,
}

PREDICT_REQUEST = OpenApiExample(
    "Score an applicant",
    value={"model_id": "credit-default", "features": FEATURES},
    request_only=True,
)
PREDICTION = OpenApiExample(
    "Prediction",
    value={
        "record_id": 1042,
        "model_id": "credit-default",
        "model_version": 1,
        "risk_score": 0.138,
        "risk_label": "low",
        "drivers": DRIVERS,
        "base_logit": -1.061,
        "created_at": "2026-11-23T15:30:00Z",
    },
    response_only=True,
    status_codes=["201"],
)
INVALID_FEATURES = problem_example(
    "Invalid features",
    status=400,
    code="invalid_features",
    title="Invalid features",
    detail="2 features are invalid.",
    errors={"features.age": ["must be ≤ 120"], "features.colour": ["unknown feature"]},
)
RECORD_LIST = OpenApiExample("Records", value=_RECORD_SUMMARY, response_only=True)
RECORD = OpenApiExample(
    "Record",
    value={
        **_RECORD_SUMMARY,
        "features": FEATURES,
        "drivers": DRIVERS,
        "base_logit": -1.061,
        "embedding": [0.12, -0.03, 0.0],
        "external_id": None,
    },
    response_only=True,
)
NEAREST_REQUEST = OpenApiExample(
    "Similar to an applicant",
    value={"model_id": "credit-default", "features": FEATURES, "k": 2},
    request_only=True,
)
NEIGHBOURS = OpenApiExample(
    "Similar records",
    value={
        "model_id": "credit-default",
        "k": 2,
        "results": [
            {
                "id": 17,
                "distance": 0.041,
                "risk_score": 0.12,
                "risk_label": "low",
                "model_version": 1,
                "source": "backfill",
                "created_at": "2026-11-23T15:00:00Z",
            },
            {
                "id": 230,
                "distance": 0.066,
                "risk_score": 0.35,
                "risk_label": "medium",
                "model_version": 1,
                "source": "api",
                "created_at": "2026-11-23T15:10:00Z",
            },
        ],
    },
    response_only=True,
    status_codes=["200"],
)
