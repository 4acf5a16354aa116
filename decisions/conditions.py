"""What a rule's condition lets the engine decide before CEL: its leading comparisons.

A condition `event.f == "text" && event.g > 5 && rest` starts with comparisons of payload fields
with literals. CEL evaluates `&&` left to right and `false && anything` is false, so when such a
comparison fails on a value of the literal's own type, the condition is false whatever follows;
when every conjunct is one and all pass, it is true. decisions/engine.py uses these to skip CEL
(and index rule sets); anything it cannot decide this way still runs through CEL.
"""

import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

CACHE_LIMIT = 10_000
INT64 = 2**63
# `event.field == "text"` (or single quotes, no escapes in the text), or `event.field <op> 123`.
_STRING_GUARD = re.compile(
    r"""^\s*event\.([A-Za-z_]\w*)\s*==\s*(?:"([^"\\\n]*)"|'([^'\\\n]*)')\s*$"""
)
_INTEGER_GUARD = re.compile(
    r"^\s*event\.([A-Za-z_]\w*)\s*(==|!=|<=|>=|<|>)\s*(-?(?:0|[1-9][0-9]{0,17}))\s*$"
)
_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
ORDERINGS = (operator.lt, operator.le, operator.gt, operator.ge)
# Every `event` the conditions name, with the field it reads when it reads one (`event.field`
# and no call after it); group 1 is None for any other use of `event`.
_EVENT_READ = re.compile(r"(?<![\w.])event\b(?:\s*\.\s*([A-Za-z_]\w*)\b(?!\s*\())?")
_STRING_LITERAL = re.compile(
    r"(?s)[rRbB]*('{3}.*?'{3}|\"{3}.*?\"{3}|'(?:\\.|[^'\\])*'|\"(?:\\.|[^\"\\])*\")"
)


# One leading conjunct `event.<field> <op> <literal>`: (field, comparison, literal).
Check = tuple[str, Callable[[Any, Any], bool], str | int]


@dataclass(frozen=True)
class Chain:
    """The leading conjuncts of a condition that Python can decide exactly, without CEL.

    A check decides only when the payload's field holds a value of the literal's own type (a
    string, or an integer CEL holds exactly; a bool is no int here): CEL compares such values
    as Python does. Conjuncts run left to right as in CEL, and `false && anything` is false, so
    the first failing check makes the condition false; when every conjunct is a check and all
    pass, it is true. Anything undecided (missing field, another type) goes to CEL, so every
    result is the one CEL gives.
    """

    checks: tuple[Check, ...]
    complete: bool  # every conjunct is a check


@lru_cache(maxsize=CACHE_LIMIT)
def condition_chain(source: str) -> Chain | None:
    """The checks of a condition `check && check && ... && rest` at its top level, or None."""
    if "//" in source:
        return None  # a comment could hide quotes from the scan below; stay on the safe side
    code = _STRING_LITERAL.sub(lambda match: "\0" * len(match[0]), source)
    depth = 0
    cuts = [0]
    index = 0
    while index < len(code):
        char = code[index]
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif depth == 0 and (char == "?" or code.startswith("||", index)):
            return None  # `||` and `?:` bind looser than `&&`: the conjunction is not the root
        elif depth == 0 and code.startswith("&&", index):
            cuts.append(index)
            index += 1
        index += 1
    conjuncts = [
        source[start + (2 if position else 0) : end]
        for position, (start, end) in enumerate(zip(cuts, [*cuts[1:], len(source)], strict=True))
    ]
    checks: list[Check] = []
    for conjunct in conjuncts:
        check = _check(conjunct)
        if check is None:
            break
        checks.append(check)
    if not checks:
        return None
    return Chain(checks=tuple(checks), complete=len(checks) == len(conjuncts))


def _check(conjunct: str) -> Check | None:
    if match := _STRING_GUARD.match(conjunct):
        return (match[1], operator.eq, match[2] if match[2] is not None else match[3])
    if match := _INTEGER_GUARD.match(conjunct):
        return (match[1], _COMPARISONS[match[2]], int(match[3]))
    return None


def event_fields(sources: Iterable[str]) -> tuple[str, ...] | None:
    """The payload fields the conditions read, or None when one reads `event` as a whole.

    `event.field` (not followed by `(`, which would be a method on the map) reads one field:
    a payload cut to those fields gives every such read, and `has()`, the same answer.
    """
    fields: set[str] = set()
    for source in sources:
        read = _event_fields_of(source)
        if read is None:
            return None
        fields.update(read)
    return tuple(sorted(fields))


@lru_cache(maxsize=CACHE_LIMIT)
def _event_fields_of(source: str) -> frozenset[str] | None:
    code = _STRING_LITERAL.sub(lambda match: '""', source)
    fields = set()
    for match in _EVENT_READ.finditer(code):
        if match[1] is None:
            return None
        fields.add(match[1])
    return frozenset(fields)
