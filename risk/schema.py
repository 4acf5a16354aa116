"""Feature schemas: their shape, and validation of one applicant's features against them.

A schema is a list of features, each `{"name", "type", "description", "required", ...}` where
`type` is `number`, `integer`, `category` or `boolean`; numbers and integers may carry `minimum`
and `maximum`, categories carry their allowed `values`; `example` is what forms are prefilled
with. Features that are not required may carry a `default`.
"""

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from risk.exceptions import InvalidArtifact, InvalidFeatures

FEATURE_TYPES = ("number", "integer", "category", "boolean")
MAX_FEATURES = 200
MAX_CATEGORY_LENGTH = 200
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_INTEGER = re.compile(r"^[+-]?\d{1,18}$")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def schema_check(schema: Any) -> list[dict[str, Any]]:
    """Return the schema if well formed, else raise InvalidArtifact naming each bad entry."""
    errors: dict[str, list[str]] = {}
    if not isinstance(schema, list) or not schema:
        raise InvalidArtifact("The feature schema must be a non-empty list of features.")
    if len(schema) > MAX_FEATURES:
        raise InvalidArtifact(f"The feature schema has more than {MAX_FEATURES} features.")
    seen: set[str] = set()
    for index, feature in enumerate(schema):
        where = f"schema[{index}]"
        if not isinstance(feature, dict):
            errors[where] = ["must be an object"]
            continue
        name, kind = feature.get("name"), feature.get("type")
        if not isinstance(name, str) or not _NAME.match(name):
            errors[f"{where}.name"] = ["must be an identifier of at most 64 characters"]
        elif name in seen:
            errors[f"{where}.name"] = [f"duplicate feature {name!r}"]
        else:
            seen.add(name)
        if kind not in FEATURE_TYPES:
            errors[f"{where}.type"] = [f"must be one of {', '.join(FEATURE_TYPES)}"]
        if kind == "category":
            values = feature.get("values")
            if (
                not isinstance(values, list)
                or not values
                or not all(isinstance(value, str) for value in values)
            ):
                errors[f"{where}.values"] = ["a category needs a non-empty list of strings"]
        for bound in ("minimum", "maximum"):
            value = feature.get(bound)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                errors[f"{where}.{bound}"] = ["must be a number"]
    if errors:
        raise InvalidArtifact("The feature schema is malformed.", errors=errors)
    return schema


def _parse(feature: Mapping[str, Any], raw: Any, *, coerce_strings: bool) -> Any:
    """One value converted to the feature's type; raises ValueError with the message to show."""
    kind = feature["type"]
    if coerce_strings and isinstance(raw, str):
        text = raw.strip()
        if kind == "integer":
            if not _INTEGER.match(text):
                raise ValueError("must be an integer")
            raw = int(text)
        elif kind == "number":
            try:
                raw = float(text)
            except ValueError:
                raise ValueError("must be a number") from None
        elif kind == "boolean":
            if text.lower() not in _TRUE | _FALSE:
                raise ValueError("must be true or false")
            raw = text.lower() in _TRUE
    if kind == "boolean":
        if not isinstance(raw, bool):
            raise ValueError("must be true or false")
        return raw
    if kind == "category":
        if not isinstance(raw, str):
            raise ValueError("must be a string")
        if raw not in feature["values"]:
            shown = ", ".join(repr(value) for value in feature["values"][:12])
            more = ", …" if len(feature["values"]) > 12 else ""
            raise ValueError(
                f"unknown category {raw[:MAX_CATEGORY_LENGTH]!r}; one of {shown}{more}"
            )
        return raw
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ValueError(f"must be {'an integer' if kind == 'integer' else 'a number'}")
    if isinstance(raw, float) and not math.isfinite(raw):
        raise ValueError("must be a finite number")
    if kind == "integer":
        if isinstance(raw, float) and not raw.is_integer():
            raise ValueError("must be an integer")
        raw = int(raw)
    else:
        raw = float(raw)
    minimum, maximum = feature.get("minimum"), feature.get("maximum")
    if minimum is not None and raw < minimum:
        raise ValueError(f"must be ≥ {minimum:g}")
    if maximum is not None and raw > maximum:
        raise ValueError(f"must be ≤ {maximum:g}")
    return raw


def features_validate(
    schema: Sequence[Mapping[str, Any]],
    features: Any,
    *,
    coerce_strings: bool = False,
    prefix: str = "features",
) -> dict[str, Any]:
    """Features checked and typed by the schema; InvalidFeatures names every bad field.

    `coerce_strings` accepts text (HTML forms, CSV files); JSON callers must send real types.
    """
    if not isinstance(features, Mapping):
        raise InvalidFeatures("Features must be an object.", errors={prefix: ["must be an object"]})
    errors: dict[str, list[str]] = {}
    known = {feature["name"] for feature in schema}
    unknown = [name for name in features if name not in known]
    for name in unknown[:20]:
        errors[f"{prefix}.{str(name)[:64]}"] = ["unknown feature"]
    clean: dict[str, Any] = {}
    for feature in schema:
        name = feature["name"]
        raw = features.get(name)
        if raw is None or (coerce_strings and isinstance(raw, str) and not raw.strip()):
            if feature.get("required", True):
                errors[f"{prefix}.{name}"] = ["required"]
            else:
                clean[name] = feature.get("default")
            continue
        try:
            clean[name] = _parse(feature, raw, coerce_strings=coerce_strings)
        except ValueError as error:
            errors[f"{prefix}.{name}"] = [str(error)]
    if errors:
        count = len(errors)
        raise InvalidFeatures(
            f"{count} feature{'s are' if count > 1 else ' is'} invalid.", errors=errors
        )
    return clean
