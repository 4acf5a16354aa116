"""Fast segment evaluation: CEL over a flat context when the expression allows it.

Converting a nested Python dict into CEL values costs ~45 µs per contact, evaluating the
program ~1-5 µs. Most segments only read `contact.<field>` and `contact.attributes.<name>`,
so we rewrite those paths to flat variables (`contact__attr__plan`) and hand CEL a flat dict
of only the values the expression reads: ten times faster, same answers (a missing attribute
is an undefined variable instead of a missing key, an error in both forms, and CEL's `||` /
`&&` absorb it the same way). Anything else (`has(...)`, indexing, the whole map) keeps the
nested form.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import cel

from campaigns.config import compile_segment, template_environment
from core.expressions import evaluate_boolean

_STRING = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_PATH = re.compile(r"\bcontact\.(?:(attributes)\.)?([A-Za-z_]\w*)")
_CONTACT = re.compile(r"\bcontact\b")
BASE_FIELDS = ("phone", "country", "time_zone")


@dataclass(frozen=True)
class Segment:
    """`matches(phone=, country=, time_zone=, attributes=)` -> bool; raises EvaluationError."""

    matches: Callable[..., bool]


def _rewrite(source: str) -> tuple[str, frozenset[str], frozenset[str]] | None:
    fields: set[str] = set()
    attributes: set[str] = set()
    pieces: list[str] = []
    position = 0
    for literal in _STRING.finditer(source):
        pieces.append(_rewrite_code(source[position : literal.start()], fields, attributes))
        pieces.append(literal.group(0))
        position = literal.end()
    pieces.append(_rewrite_code(source[position:], fields, attributes))
    flat = "".join(pieces)
    code_only = _STRING.sub("''", flat)
    if _CONTACT.search(code_only) or "has(" in code_only or fields - set(BASE_FIELDS):
        return None
    return flat, frozenset(fields), frozenset(attributes)


def _rewrite_code(code: str, fields: set[str], attributes: set[str]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(1):
            attributes.add(match.group(2))
            return f"contact__attr__{match.group(2)}"
        if match.group(2) == "attributes":
            return match.group(0)  # the whole map: leave it, the nested form will be used
        fields.add(match.group(2))
        return f"contact__{match.group(2)}"

    return _PATH.sub(replace, code)


@lru_cache(maxsize=256)
def segment_compile(source: str) -> Segment:
    """Validate (through core.expressions) and build the fastest evaluator for `source`."""
    nested = compile_segment(source)
    rewritten = _rewrite(source)
    if rewritten is not None:
        flat_source, fields, attributes = rewritten
        try:
            flat = cel.compile(flat_source)
        except ValueError:
            flat = None
        if flat is not None:
            field_names = tuple((name, f"contact__{name}") for name in fields)
            attribute_names = tuple((name, f"contact__attr__{name}") for name in attributes)

            def matches_flat(**contact: Any) -> bool:
                context = {variable: contact[name] for name, variable in field_names}
                values = contact["attributes"]
                for name, variable in attribute_names:
                    if name in values:
                        context[variable] = values[name]
                return evaluate_boolean(flat, context)

            return Segment(matches=matches_flat)

    def matches_nested(**contact: Any) -> bool:
        return evaluate_boolean(nested, {"contact": contact})

    return Segment(matches=matches_nested)


# --- memoised per distinct input --------------------------------------------------------------
# A launch evaluates the same segment and template for 100,000 contacts, but what they read
# (a plan, a first name, an order count) takes far fewer distinct values: evaluate each distinct
# input once. Inputs that are not hashable (lists, maps) are evaluated every time.

_MISSING = object()
CACHE_LIMIT = 200_000


@dataclass(frozen=True)
class Reads:
    """Which contact fields and attributes an expression or template reads."""

    fields: tuple[str, ...]
    attributes: tuple[str, ...]


def segment_reads(source: str) -> Reads | None:
    rewritten = _rewrite(source)
    if rewritten is None:
        return None
    _flat, fields, attributes = rewritten
    return Reads(fields=tuple(sorted(fields)), attributes=tuple(sorted(attributes)))


def template_reads(source: str) -> Reads | None:
    """The `contact` paths a Jinja template reads, when it reads nothing else."""
    from jinja2 import TemplateError, meta, nodes

    try:
        ast = template_environment.parse(source)
    except TemplateError:
        return None
    if meta.find_undeclared_variables(ast) - {"contact"}:
        return None
    fields: set[str] = set()
    attributes: set[str] = set()
    names = list(ast.find_all(nodes.Name))
    parents: dict[int, Any] = {}
    for node in ast.find_all(nodes.Node):
        for child in node.iter_child_nodes():
            parents[id(child)] = node
    for name in names:
        if name.name != "contact" or name.ctx != "load":
            continue
        parent = parents.get(id(name))
        if not isinstance(parent, nodes.Getattr):
            return None
        if parent.attr in BASE_FIELDS:
            fields.add(parent.attr)
            continue
        grandparent = parents.get(id(parent))
        if parent.attr != "attributes" or not isinstance(grandparent, nodes.Getattr):
            return None
        attributes.add(grandparent.attr)
    return Reads(fields=tuple(sorted(fields)), attributes=tuple(sorted(attributes)))


class Memo:
    """Results per distinct input, bounded."""

    def __init__(self, reads: Reads | None):
        self.reads = reads
        self.results: dict[tuple, Any] = {}
        self._key = _key_function(reads) if reads is not None else None

    def get(self, contact: dict[str, Any], compute: Callable[[], Any]) -> Any:
        # Runs for every contact of a launch: one key built, one dict lookup on a hit.
        if self._key is None:
            return compute()
        key = self._key(contact)
        try:
            return self.results[key]
        except KeyError:
            pass
        except TypeError:  # an unhashable value (a list, a map): evaluated every time
            return compute()
        result = compute()
        if len(self.results) < CACHE_LIMIT:
            self.results[key] = result
        return result


def _key_function(reads: Reads) -> Callable[[dict[str, Any]], tuple]:
    """A contact's memo key: the values of what is read, a missing attribute as _MISSING.
    Made once per evaluation, and with no generator for the common segment or template that
    reads one attribute and no field (it runs for every contact)."""
    if not reads.fields and len(reads.attributes) == 1:
        (name,) = reads.attributes
        return lambda contact: (contact["attributes"].get(name, _MISSING),)
    fields, attributes = reads.fields, reads.attributes
    return lambda contact: (
        *[contact[field] for field in fields],
        *[contact["attributes"].get(attribute, _MISSING) for attribute in attributes],
    )
