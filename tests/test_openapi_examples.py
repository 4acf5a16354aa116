"""Every example in the OpenAPI document is valid against the schema it is shown under.

Integrators copy examples; an example the schema rejects (e.g. a page wrapped in a second
pagination envelope) teaches them a contract the API does not keep. The examples of each app's
operations are checked in one test per app, so a failure names the app, and its message lists
the operation, the status, the example and what is wrong.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
from drf_spectacular.generators import SchemaGenerator
from jsonschema import Draft202012Validator, FormatChecker, ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

DOCUMENT_URI = "urn:openapi"
APPS = ["core", "decisions", "risk", "records", "campaigns"]
METHODS = {"get", "put", "post", "patch", "delete", "head", "options"}

# jsonschema checks these two formats only with optional packages; the standard library will do.
format_checker = FormatChecker()


@format_checker.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    return not isinstance(value, str) or bool(datetime.fromisoformat(value))


@format_checker.checks("uri")
def _is_uri(value: object) -> bool:
    return not isinstance(value, str) or bool(urlsplit(value).scheme and urlsplit(value).netloc)


@dataclass(frozen=True)
class Example:
    app: str
    operation: str  # "GET /api/v1/records/"
    where: str  # "response 200 application/json", "request application/json", "parameter k"
    name: str
    value: Any
    schema_pointer: str  # where the schema the example sits under is, in the document

    def label(self) -> str:
        return f"{self.operation} {self.where} example {self.name!r}"


def _pointer(*tokens: str | int) -> str:
    return "#/" + "/".join(str(token).replace("~", "~0").replace("/", "~1") for token in tokens)


@dataclass
class Document:
    schema: dict[str, Any]
    apps: dict[tuple[str, str], str]  # (path, method) -> the app whose view serves it
    registry: Registry = field(init=False)

    def __post_init__(self) -> None:
        resource = Resource.from_contents(self.schema, default_specification=DRAFT202012)
        self.registry = Registry().with_resource(DOCUMENT_URI, resource)

    def _named_values(self, holder: dict[str, Any]) -> Iterator[tuple[str, Any]]:
        if "example" in holder:
            yield "example", holder["example"]
        for name, example in holder.get("examples", {}).items():
            if "$ref" in example:  # a component-level example
                example = self.schema["components"]["examples"][example["$ref"].split("/")[-1]]
            if "value" in example:
                yield name, example["value"]

    def examples(self) -> Iterator[Example]:
        """Every example under a parameter, a request body or a response, with its schema."""
        for path, operations in self.schema["paths"].items():
            for method, operation in operations.items():
                if method in METHODS:
                    yield from self._operation_examples(path, method, operation)

    def _operation_examples(
        self, path: str, method: str, operation: dict[str, Any]
    ) -> Iterator[Example]:
        def example(where: str, name: str, value: Any, *schema_at: str | int) -> Example:
            pointer = _pointer("paths", path, method, *schema_at)
            app = self.apps[path, method]
            return Example(app, f"{method.upper()} {path}", where, name, value, pointer)

        for index, parameter in enumerate(operation.get("parameters", [])):
            for name, value in self._named_values(parameter):
                where = f"parameter {parameter['name']}"
                yield example(where, name, value, "parameters", index, "schema")
        for media_type, content in operation.get("requestBody", {}).get("content", {}).items():
            for name, value in self._named_values(content):
                schema_at = ("requestBody", "content", media_type, "schema")
                yield example(f"request {media_type}", name, value, *schema_at)
        for status, response in operation.get("responses", {}).items():
            for media_type, content in response.get("content", {}).items():
                for name, value in self._named_values(content):
                    schema_at = ("responses", status, "content", media_type, "schema")
                    yield example(f"response {status} {media_type}", name, value, *schema_at)

    def problems(self, example: Example) -> list[str]:
        """What is wrong with the example, one line per error; empty when it is valid."""
        validator = Draft202012Validator(
            {"$ref": DOCUMENT_URI + example.schema_pointer},
            registry=self.registry,
            format_checker=format_checker,
        )
        errors = sorted(validator.iter_errors(example.value), key=lambda e: list(e.absolute_path))
        return [f"{example.label()}: at {error.json_path}: {_said(error)}" for error in errors]


def _said(error: ValidationError) -> str:
    # jsonschema quotes the whole instance first; for a large one, say what it failed instead.
    if len(error.message) <= 200:
        return error.message
    return f"{repr(error.instance)[:60]}… fails {error.validator} {error.validator_value!r}"


@pytest.fixture(scope="module")
def document() -> Document:
    generator = SchemaGenerator()
    schema = generator.get_schema(request=None, public=True)
    apps = {}
    for path, _regex, method, callback in generator.endpoints:
        view = generator.create_view(callback, method)
        coerced = generator.coerce_path(path, method, view)
        apps[coerced, method.lower()] = view.__module__.split(".")[0]
    return Document(schema, apps)


def test_it_finds_examples_of_every_app_and_only_of_known_apps(document):
    apps = {example.app for example in document.examples()}

    assert apps == set(APPS)


@pytest.mark.parametrize("app", APPS)
def test_every_example_matches_its_schema(document, app):
    examples = [example for example in document.examples() if example.app == app]
    problems = [problem for example in examples for problem in document.problems(example)]

    assert examples
    assert not problems, f"{len(problems)} invalid examples:\n" + "\n".join(problems)


def test_it_rejects_a_page_wrapped_in_a_second_pagination_envelope(document):
    [page] = [
        example
        for example in document.examples()
        if example.operation == "GET /api/v1/records/" and example.where.startswith("response 200")
    ]
    inner = {**page.value, "count": 1, "next": None, "previous": None}
    wrapped_twice = replace(page, value={**page.value, "results": [inner]})

    assert document.problems(page) == []
    assert "'id' is a required property" in "\n".join(document.problems(wrapped_twice))
