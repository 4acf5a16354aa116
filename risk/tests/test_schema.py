import pytest

from risk.exceptions import InvalidArtifact, InvalidFeatures
from risk.schema import features_validate, schema_check

SCHEMA = [
    {"name": "age", "type": "integer", "minimum": 18, "maximum": 120, "required": True},
    {"name": "income", "type": "number", "minimum": 0, "required": True},
    {"name": "housing", "type": "category", "values": ["own", "rent"], "required": True},
    {"name": "telephone", "type": "boolean", "required": True},
    {"name": "note_count", "type": "integer", "required": False, "default": 0},
]


def test_it_accepts_valid_features_and_fills_defaults():
    clean = features_validate(
        SCHEMA, {"age": 40, "income": 1200, "housing": "own", "telephone": False}
    )

    assert clean == {
        "age": 40,
        "income": 1200.0,
        "housing": "own",
        "telephone": False,
        "note_count": 0,
    }


def test_it_names_every_bad_field_with_its_reason():
    with pytest.raises(InvalidFeatures) as caught:
        features_validate(
            SCHEMA,
            {"age": 130, "income": "a lot", "housing": "castle", "colour": "red"},
        )

    assert caught.value.errors == {
        "features.colour": ["unknown feature"],
        "features.age": ["must be ≤ 120"],
        "features.income": ["must be a number"],
        "features.housing": ["unknown category 'castle'; one of 'own', 'rent'"],
        "features.telephone": ["required"],
    }
    assert caught.value.detail == "5 features are invalid."


@pytest.mark.parametrize(
    ("feature", "value", "message"),
    [
        ("age", True, "must be an integer"),
        ("age", 30.5, "must be an integer"),
        ("age", 17, "must be ≥ 18"),
        ("income", float("nan"), "must be a finite number"),
        ("income", -1, "must be ≥ 0"),
        ("telephone", "yes", "must be true or false"),
        ("telephone", 1, "must be true or false"),
        ("housing", 3, "must be a string"),
    ],
)
def test_it_rejects_wrong_types_strictly_for_json(feature, value, message):
    features = {"age": 40, "income": 1.0, "housing": "own", "telephone": True, feature: value}

    with pytest.raises(InvalidFeatures) as caught:
        features_validate(SCHEMA, features)

    assert caught.value.errors == {f"features.{feature}": [message]}


def test_it_coerces_text_from_forms_and_files():
    clean = features_validate(
        SCHEMA,
        {"age": " 41 ", "income": "99.5", "housing": "rent", "telephone": "yes", "note_count": ""},
        coerce_strings=True,
    )

    assert clean == {
        "age": 41,
        "income": 99.5,
        "housing": "rent",
        "telephone": True,
        "note_count": 0,
    }


def test_it_rejects_features_that_are_not_an_object():
    with pytest.raises(InvalidFeatures) as caught:
        features_validate(SCHEMA, ["age", 40])

    assert caught.value.errors == {"features": ["must be an object"]}


def test_it_rejects_a_malformed_schema():
    with pytest.raises(InvalidArtifact) as caught:
        schema_check(
            [
                {"name": "age", "type": "integer"},
                {"name": "age", "type": "text"},
                {"name": "purpose", "type": "category", "values": []},
            ]
        )

    assert caught.value.errors == {
        "schema[1].name": ["duplicate feature 'age'"],
        "schema[1].type": ["must be one of number, integer, category, boolean"],
        "schema[2].values": ["a category needs a non-empty list of strings"],
    }
