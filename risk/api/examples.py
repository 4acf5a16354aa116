"""OpenAPI examples of the model registry API (the shipped credit-default model's values).

A list endpoint's example is one item: drf-spectacular wraps it in the pagination envelope.
"""

from drf_spectacular.utils import OpenApiExample

from core.schema import problem_example

_METRICS = {
    "cv_folds": 5,
    "roc_auc_mean": 0.78,
    "roc_auc_std": 0.024,
    "brier_mean": 0.169,
    "brier_std": 0.009,
    "roc_auc_out_of_fold": 0.779,
    "training_rows": 1000,
    "positive_rate": 0.3,
}
_THRESHOLDS = [["low", 0.3], ["medium", 0.6], ["high", None]]
_FEATURE_SCHEMA = [
    {
        "name": "age",
        "type": "integer",
        "description": "Age in years",
        "required": True,
        "minimum": 18,
        "maximum": 120,
        "example": 33,
    },
    {
        "name": "housing",
        "type": "category",
        "description": "Housing",
        "required": True,
        "values": ["for free", "own", "rent"],
        "example": "own",
    },
    {
        "name": "telephone",
        "type": "boolean",
        "description": "Telephone registered in the customer's name",
        "required": True,
        "example": False,
    },
]
_MODEL = {
    "key": "credit-default",
    "name": "Credit default (German Credit)",
    "description": "Logistic regression on the Statlog German Credit data.",
    "production_version": 1,
}
_VERSION = {
    "version": 1,
    "stage": "production",
    "metrics": _METRICS,
    "created_at": "2026-11-23T15:00:00Z",
    "promoted_at": "2026-11-23T15:00:00Z",
}

MODEL_LIST = OpenApiExample("Models", value={**_MODEL, "versions": [_VERSION]}, response_only=True)
MODEL_METADATA = OpenApiExample(
    "Model metadata",
    value={
        **_MODEL,
        "versions": [
            {
                **_VERSION,
                "feature_schema": _FEATURE_SCHEMA,
                "label_thresholds": _THRESHOLDS,
                "dataset_fingerprint": "2c0bae00275c028f…",
                "embedding_source_dimensions": 61,
            }
        ],
    },
    response_only=True,
)
MODEL_NOT_FOUND = problem_example(
    "Unknown model",
    status=404,
    code="model_not_found",
    title="Model not found",
    detail="No model 'churn'.",
    errors={"model_id": ["unknown model 'churn'"]},
)
