"""CEL, the expression language of rules and segments: compiled once, evaluated many times.

Compilation checks syntax and that the expression only names the variables its caller allows,
so an error surfaces when a rule or segment is saved, never when it is evaluated.
"""

import re
from collections.abc import Callable, Collection, Iterable, Mapping
from functools import lru_cache
from typing import Any

import cel

from core.errors import InvalidInput

MAX_EXPRESSION_LENGTH = 4000
# Cost bounds checked at save. CEL always terminates, but a comprehension inside a comprehension
# over a large payload list is quadratic, and deep nesting makes the parser recurse: one level of
# comprehension and 32 of brackets keep the worst accepted expression within a few milliseconds
# on the largest payload the API accepts (measured in core/tests/test_expressions.py).
MAX_NESTING_DEPTH = 32
MAX_COMPREHENSION_NESTING = 1
# The CEL runtime copies a variable's whole value each time an expression reads it, so the cost
# is (reads of a variable) times (its size): reads are capped here and payload sizes by the callers.
MAX_VARIABLE_READS = 16
MAX_COMPREHENSION_BODY = 400
_POSITION = re.compile(r"<input>:(\d+):(\d+)")
_STRING = re.compile(
    r"(?s)[rRbB]*('{3}.*?'{3}|\"{3}.*?\"{3}|'(?:\\.|[^'\\])*'|\"(?:\\.|[^\"\\])*\")"
)
_COMPREHENSION = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\($")

# Named lists are looked up as sets. This CEL runtime copies a list into the evaluation each time
# an expression reads it (about 1 ms for 10,000 values), so `x in lists.name` is compiled as a
# call to a Python function over a frozenset instead (about 2 µs whatever the size). Only the
# exact shape `<variable path> in lists.<name>` between operators that bind more loosely is
# rewritten, so the meaning never changes; any other use of a list keeps CEL's own semantics.
MEMBERSHIP_FUNCTION = "in_list"
_PATH = r"[A-Za-z_]\w*(?:\s*\.\s*[A-Za-z_]\w*|\s*\[\s*(?:\"[^\"]*\"|'[^']*'|\d+)\s*\])*"
_MEMBERSHIP = re.compile(
    rf"(?P<before>^|[([{{,:]|(?<!\.)\?|&&|\|\|)(?P<space>\s*)(?P<value>{_PATH})\s+in\s+"
    rf"(?P<root>[A-Za-z_]\w*)\s*(?:\.\s*(?P<dotted>[A-Za-z_]\w*)|\[\s*\"(?P<quoted>[^\"]+)\"\s*\])"
    rf"(?=\s*(?:$|[)\]}},?:]|&&|\|\||==|!=))"
)


class ExpressionError(InvalidInput):
    """A CEL expression that does not compile; `line` and `column` locate the problem."""

    code = "invalid_expression"
    title = "Invalid expression"

    def __init__(
        self,
        detail: str,
        *,
        field: str = "condition",
        line: int | None = None,
        column: int | None = None,
    ):
        super().__init__(detail, errors={field: [detail]}, line=line, column=column)
        self.line = line
        self.column = column


@lru_cache(maxsize=4096)
def _compile_cached(source: str) -> cel.Program:
    return cel.compile(source)


def compile_expression(
    source: str,
    *,
    allowed_variables: Iterable[str],
    field: str = "condition",
    set_variable: str | None = None,
) -> cel.Program:
    """Compile `source` (cached per text) or raise ExpressionError naming the position.

    With `set_variable`, membership tests on that variable's named lists become set lookups
    (see MEMBERSHIP_FUNCTION); the context must then come from build_context(..., sets=...).
    """
    if not source or not source.strip():
        raise ExpressionError("The expression is empty.", field=field)
    if len(source) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(
            f"The expression is {len(source)} characters; the limit is {MAX_EXPRESSION_LENGTH}.",
            field=field,
        )
    _check_cost_bounds(source, field=field)
    compiled_source = as_set_lookups(source, set_variable) if set_variable else source
    try:
        program = _compile_cached(compiled_source)
    except ValueError as error:
        message = str(error)
        position = _POSITION.search(message)
        line, column = (int(position[1]), int(position[2])) if position else (None, None)
        summary = message.split("\n")[0]
        if "ERROR:" in summary:
            summary = summary.split("ERROR:", 1)[1].strip()
        raise ExpressionError(summary, field=field, line=line, column=column) from None
    allowed = set(allowed_variables)
    unknown = sorted(set(_free_variables(program)) - allowed)
    if unknown:
        raise ExpressionError(
            f"Unknown variable {', '.join(unknown)}; available: {', '.join(sorted(allowed))}.",
            field=field,
        )
    _check_variable_reads(program, source, field=field)
    return program


def as_set_lookups(source: str, variable: str) -> str:
    """`source` with each `<path> in <variable>.<name>` written as a set lookup.

    String literals are blanked (same length) before matching, so text inside them never
    matches, and the replacement splices the original characters back in.
    """
    code = _STRING.sub(lambda match: '"' + " " * (len(match[0]) - 2) + '"', source)
    pieces: list[str] = []
    position = 0
    for match in _MEMBERSHIP.finditer(code):
        if match["root"] != variable:
            continue
        # A quoted name is blank in `code`: read it from the source.
        name = match["dotted"] or source[slice(*match.span("quoted"))]
        value_start, value_end = match.span("value")
        pieces.append(source[position:value_start])
        pieces.append(f'{MEMBERSHIP_FUNCTION}("{name}", {source[value_start:value_end]})')
        position = match.end()
    pieces.append(source[position:])
    return "".join(pieces)


def _check_cost_bounds(source: str, *, field: str) -> None:
    """Refuse nesting deeper than the bounds, counted outside string literals."""
    code = _STRING.sub('""', source)
    depth = 0
    comprehensions: list[tuple[int, int]] = []  # (bracket depth, body start) of each open one
    for index, char in enumerate(code):
        if char in "([{":
            depth += 1
            if depth > MAX_NESTING_DEPTH:
                raise ExpressionError(
                    f"The expression nests brackets more than {MAX_NESTING_DEPTH} deep.",
                    field=field,
                )
            if char == "(" and _COMPREHENSION.search(code[max(0, index - 40) : index + 1]):
                comprehensions.append((depth, index))
                if len(comprehensions) > MAX_COMPREHENSION_NESTING:
                    raise ExpressionError(
                        "A comprehension (all, exists, exists_one, map, filter) inside another "
                        "is not allowed: its cost grows with the square of the input.",
                        field=field,
                    )
        elif char in ")]}":
            if comprehensions and comprehensions[-1][0] == depth:
                _, start = comprehensions.pop()
                if index - start > MAX_COMPREHENSION_BODY:
                    raise ExpressionError(
                        f"A comprehension's body is {index - start} characters; the limit is "
                        f"{MAX_COMPREHENSION_BODY} (it runs once per item).",
                        field=field,
                    )
            depth = max(depth - 1, 0)


def _check_variable_reads(program: cel.Program, source: str, *, field: str) -> None:
    code = _STRING.sub('""', source)
    roots = set(program.variables()) - _comprehension_variables(source)
    reads = sum(len(re.findall(rf"(?<![\w.]){re.escape(name)}\b", code)) for name in roots)
    if reads > MAX_VARIABLE_READS:
        raise ExpressionError(
            f"The expression reads its variables {reads} times; the limit is "
            f"{MAX_VARIABLE_READS} (each read copies the value it names).",
            field=field,
        )


def _free_variables(program: cel.Program) -> list[str]:
    # Comprehension variables (`x` in `list.exists(x, ...)`) are listed too; they are bound
    # locally, so we only check names that are used as a root (followed by `.` or `[`)
    # or that appear alone, excluding macro-bound ones.
    bound = _comprehension_variables(program.source)
    return [name for name in program.variables() if name not in bound]


def _comprehension_variables(source: str) -> set[str]:
    return set(re.findall(r"\.(?:all|exists|exists_one|map|filter)\(\s*([A-Za-z_]\w*)\s*,", source))


class EvaluationError(Exception):
    """An expression failed at evaluation (missing field, type mismatch)."""


def evaluate(program: cel.Program, context: cel.Context | Mapping[str, Any]) -> Any:
    """Evaluate and normalise every failure to EvaluationError."""
    try:
        return program.execute(context)  # type: ignore[arg-type]
    except Exception as error:  # the CEL runtime raises KeyError, TypeError, ValueError, ...
        raise EvaluationError(f"{type(error).__name__}: {error}") from error


def evaluate_boolean(program: cel.Program, context: cel.Context | Mapping[str, Any]) -> bool:
    """Evaluate a condition; a non-boolean result is an error, not a truthy value."""
    result = evaluate(program, context)
    if not isinstance(result, bool):
        raise EvaluationError(f"The expression returned {type(result).__name__}, not a boolean.")
    return result


def build_context(
    variables: Mapping[str, Any], *, sets: Mapping[str, Collection[Any]] | None = None
) -> cel.Context:
    """One context per event or contact, shared by every expression evaluated against it.

    `sets` are the named lists that compiled set lookups read; each becomes a frozenset the
    first time an expression asks for it.
    """
    context = cel.Context(dict(variables))
    if sets is not None:
        context.add_function(MEMBERSHIP_FUNCTION, membership(sets))
    return context


def membership(lists: Mapping[str, Collection[Any]]) -> Callable[[str, Any], bool]:
    """The set lookup of compiled membership tests over these named lists."""
    frozen: dict[str, frozenset[Any]] = {}

    def contains(name: str, value: Any) -> bool:
        values = frozen.get(name)
        if values is None:
            values = frozen[name] = frozenset(lists[name])  # KeyError, as CEL's own lookup
        # CEL equality never equates a bool with a number (Python does), and a list or map
        # equals no string or number: both are simply not members.
        if isinstance(value, bool):
            return False
        try:
            return value in values
        except TypeError:
            return False

    return contains
