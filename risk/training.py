"""The shipped model: German Credit data, its feature schema, and the training recipe.

Data: Statlog (German Credit Data), Hans Hofmann, 1994, UCI Machine Learning Repository,
https://doi.org/10.24432/C5NC77, licensed CC BY 4.0. See risk/data/README.md.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

# pandas and scikit-learn are imported where they are used: risk.services and risk.selectors
# import this module at Django start-up, and every process would pay for them (see risk.scoring).
if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline

from risk.drift import reference_build

DATA_FILE = Path(__file__).resolve().parent / "data" / "german_credit.csv"
TARGET_COLUMN = "creditability"
DEFAULT_CLASS = "bad"
# Scores below 0.3 are low risk, below 0.6 medium, the rest high (30 % is the base default rate).
CREDIT_THRESHOLDS: list[list[Any]] = [["low", 0.3], ["medium", 0.6], ["high", None]]

# CSV column -> (feature name, type, description, minimum, maximum).
_COLUMNS: dict[str, tuple[str, str, str, float | None, float | None]] = {
    "status_of_existing_checking_account": (
        "checking_account",
        "category",
        "Status of the existing checking account",
        None,
        None,
    ),
    "duration_in_month": ("duration_months", "integer", "Credit duration in months", 1, 120),
    "credit_history": ("credit_history", "category", "Credit history", None, None),
    "purpose": ("purpose", "category", "Purpose of the credit", None, None),
    "credit_amount": ("credit_amount", "integer", "Credit amount (DM)", 1, 1_000_000),
    "savings_account_and_bonds": ("savings", "category", "Savings account / bonds", None, None),
    "present_employment_since": (
        "employment_since",
        "category",
        "Present employment since",
        None,
        None,
    ),
    "installment_rate_in_percentage_of_disposable_income": (
        "installment_rate",
        "integer",
        "Installment rate, % of disposable income (1-4)",
        1,
        4,
    ),
    "personal_status_and_sex": (
        "personal_status_sex",
        "category",
        "Personal status and sex",
        None,
        None,
    ),
    "other_debtors_or_guarantors": (
        "other_debtors",
        "category",
        "Other debtors / guarantors",
        None,
        None,
    ),
    "present_residence_since": (
        "residence_since",
        "integer",
        "Present residence since (1-4)",
        1,
        4,
    ),
    "property": ("property", "category", "Most valuable property", None, None),
    "age_in_years": ("age", "integer", "Age in years", 18, 120),
    "other_installment_plans": (
        "other_installment_plans",
        "category",
        "Other installment plans",
        None,
        None,
    ),
    "housing": ("housing", "category", "Housing", None, None),
    "number_of_existing_credits_at_this_bank": (
        "existing_credits",
        "integer",
        "Number of existing credits at this bank",
        1,
        10,
    ),
    "job": ("job", "category", "Job", None, None),
    "number_of_people_being_liable_to_provide_maintenance_for": (
        "dependents",
        "integer",
        "People liable to provide maintenance for",
        0,
        10,
    ),
    "telephone": (
        "telephone",
        "boolean",
        "Telephone registered in the customer's name",
        None,
        None,
    ),
    "foreign_worker": ("foreign_worker", "boolean", "Foreign worker", None, None),
}
# Reason texts for the decision's reason codes, written for the applicant (the wording credit
# adverse-action notices use); kept in each version's feature schema as `reason`.
_REASONS = {
    "checking_account": "Status of existing checking account",
    "duration_months": "Length of the credit term requested",
    "credit_history": "Credit history",
    "purpose": "Purpose of the credit",
    "credit_amount": "Amount of credit requested",
    "savings": "Insufficient savings or bonds",
    "employment_since": "Length of present employment",
    "installment_rate": "Installments too high relative to disposable income",
    "personal_status_sex": "Personal status",
    "other_debtors": "Other debtors or guarantors",
    "residence_since": "Length of residence at present address",
    "property": "Value of property owned",
    "age": "Age",
    "other_installment_plans": "Other installment plans in progress",
    "housing": "Housing situation",
    "existing_credits": "Number of existing credits at this bank",
    "job": "Type of employment",
    "dependents": "Number of dependents",
    "telephone": "No telephone registered in the applicant's name",
    "foreign_worker": "Foreign worker status",
}
_BOOLEAN_TRUE = {"telephone": "yes, registered under the customers name", "foreign_worker": "yes"}


def dataset_fingerprint() -> str:
    return hashlib.sha256(DATA_FILE.read_bytes()).hexdigest()


def german_credit_frame() -> tuple[pd.DataFrame, pd.Series]:
    """The 1,000 applicants as schema-named features, and the target (1 = defaulted / bad)."""
    import pandas as pd

    raw = pd.read_csv(DATA_FILE, dtype=str, keep_default_na=False)
    frame = pd.DataFrame()
    for column, (name, kind, *_rest) in _COLUMNS.items():
        if kind == "integer":
            frame[name] = raw[column].astype("int64")
        elif kind == "boolean":
            frame[name] = raw[column] == _BOOLEAN_TRUE[name]
        else:
            frame[name] = raw[column].astype(object)
    target = (raw[TARGET_COLUMN] == DEFAULT_CLASS).astype("int64")
    return frame, target


def german_credit_rows() -> Iterator[tuple[int, dict[str, Any]]]:
    """(CSV line number, features as JSON types) for every applicant of the data set."""
    frame, _target = german_credit_frame()
    for index, row in enumerate(frame.to_dict(orient="records")):
        yield index + 2, {key: _plain(value) for key, value in row.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def credit_default_schema(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The feature schema: types, ranges and the categories seen in the data set."""
    schema = []
    for name, kind, description, minimum, maximum in _COLUMNS.values():
        feature: dict[str, Any] = {
            "name": name,
            "type": kind,
            "description": description,
            "reason": _REASONS[name],
            "required": True,
        }
        if kind == "category":
            feature["values"] = sorted(frame[name].unique().tolist())
            feature["example"] = str(frame[name].mode().iloc[0])
        elif kind == "boolean":
            feature["example"] = bool(frame[name].mode().iloc[0])
        else:
            feature["minimum"], feature["maximum"] = minimum, maximum
            feature["example"] = int(frame[name].median())
        schema.append(feature)
    return schema


def credit_default_pipeline(schema: list[dict[str, Any]]) -> Pipeline:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [f["name"] for f in schema if f["type"] in ("integer", "number", "boolean")]
    categorical = [f["name"] for f in schema if f["type"] == "category"]
    return Pipeline(
        [
            (
                "preprocess",
                ColumnTransformer(
                    [
                        ("numeric", StandardScaler(), numeric),
                        (
                            "categorical",
                            OneHotEncoder(
                                categories=[
                                    next(f["values"] for f in schema if f["name"] == name)
                                    for name in categorical
                                ],
                                sparse_output=False,
                                handle_unknown="error",
                            ),
                            categorical,
                        ),
                    ]
                ),
            ),
            ("classifier", LogisticRegression(C=1.0, max_iter=2000)),
        ]
    )


@dataclass(frozen=True)
class TrainedModel:
    artifact: bytes
    schema: list[dict[str, Any]]
    thresholds: list[list[Any]]
    metrics: dict[str, Any]
    dataset_fingerprint: str
    baseline: list[float]
    # The training distribution of each feature and of the score, for drift (risk.drift).
    reference: dict[str, Any] = field(default_factory=dict)


def _as_model_input(frame: pd.DataFrame) -> pd.DataFrame:
    copy = frame.copy()
    for column in copy.columns:
        if copy[column].dtype == bool:
            copy[column] = copy[column].astype("int64")
    return copy


def credit_default_train(
    *, folds: int = 5, seed: int = 42, report: Callable[[str], None] = lambda _line: None
) -> TrainedModel:
    """Cross-validate (ROC AUC, Brier), then fit on all rows and save the pipeline with skops."""
    from sklearn.metrics import brier_score_loss, roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    frame, target = german_credit_frame()
    schema = credit_default_schema(frame)
    features = _as_model_input(frame)
    report(f"Loaded {len(frame)} applicants, {len(schema)} features, {target.mean():.0%} bad.")
    aucs, briers = [], []
    out_of_fold = np.zeros(len(frame))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for fold, (train, test) in enumerate(splitter.split(features, target), start=1):
        pipeline = credit_default_pipeline(schema)
        pipeline.fit(features.iloc[train], target.iloc[train])
        probabilities = pipeline.predict_proba(features.iloc[test])[:, 1]
        out_of_fold[test] = probabilities
        aucs.append(roc_auc_score(target.iloc[test], probabilities))
        briers.append(brier_score_loss(target.iloc[test], probabilities))
        report(f"Fold {fold}/{folds}: ROC AUC {aucs[-1]:.3f}, Brier {briers[-1]:.3f}")
    pipeline = credit_default_pipeline(schema)
    pipeline.fit(features, target)
    encoded = np.asarray(pipeline[:-1].transform(features), dtype=np.float64)
    reference = reference_build(
        rows=[row for _line, row in german_credit_rows()],
        scores=pipeline.predict_proba(features)[:, 1].tolist(),
        schema=schema,
    )
    metrics = {
        "cv_folds": folds,
        "roc_auc_mean": round(float(np.mean(aucs)), 4),
        "roc_auc_std": round(float(np.std(aucs)), 4),
        "brier_mean": round(float(np.mean(briers)), 4),
        "brier_std": round(float(np.std(briers)), 4),
        "roc_auc_out_of_fold": round(float(roc_auc_score(target, out_of_fold)), 4),
        "training_rows": len(frame),
        "positive_rate": round(float(target.mean()), 4),
    }
    buffer = io.BytesIO()
    import skops.io  # deferred: importing it loads all of scikit-learn (see risk.scoring)

    skops.io.dump(pipeline, buffer)
    return TrainedModel(
        artifact=buffer.getvalue(),
        schema=schema,
        thresholds=CREDIT_THRESHOLDS,
        metrics=metrics,
        dataset_fingerprint=dataset_fingerprint(),
        baseline=encoded.mean(axis=0).tolist(),
        reference=reference,
    )
