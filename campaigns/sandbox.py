"""The Jinja sandbox for message templates: no Python internals, and bounded work and size.

Jinja's own `SandboxedEnvironment` keeps templates away from Python internals but not from
building large values: `{{ "x" * 10**9 }}`, `{% set s = s ~ s %}` thirty times, nested loops
over `range(100000)`, a list literal nesting itself, a macro that calls itself twice. Every way a
template can repeat work or grow a value passes through a hook here, and each has a budget:

- operators `*`, `**`, `+`, `%` (`call_binop`) refuse values over MAX_VALUE_LENGTH characters
  or items (counted through nested lists) and integers over MAX_INTEGER_BITS, before computing;
- every call (`call`: globals, methods, macros) counts against MAX_CALLS per render, and the
  string methods that take a width or repeat their input are checked before they run;
- the parser's tree is rewritten (`_Guard`) so that every `{% for %}` iterates through one
  counter per render (MAX_LOOP_ITERATIONS), everything written (into the message, a
  `{% set %}` block or a macro) is charged against MAX_EMITTED_CHARACTERS, and `~` and list,
  tuple and dict literals are size-checked; `range()` is capped at MAX_RANGE items;
- every filter is size-checked after it runs, and those that can grow text (`center`,
  `indent`, `format`, `replace`, `join`, `wordwrap`) before;
- lists and dicts cannot be mutated (the immutable sandbox); `lipsum` is gone;
- the message is refused past MAX_OUTPUT_CHARACTERS or MAX_SEGMENTS SMS segments.

A template over a limit raises TemplateLimitExceeded (a TemplateRenderError naming `template`).
Campaign configs and SMS templates are rendered against a representative context when they are
saved, so such a template is refused then; every later render stays bounded all the same.
"""

import contextvars
import functools
import re
import types
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from jinja2 import TemplateError, nodes, pass_context
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

from campaigns.exceptions import TemplateLimitExceeded, TemplateRenderError
from campaigns.sms import sms_length

MAX_OUTPUT_CHARACTERS = 1600
MAX_SEGMENTS = 10
MAX_VALUE_LENGTH = 10_000
MAX_EMITTED_CHARACTERS = 100_000
MAX_INTEGER_BITS = 256
MAX_RANGE = 1_000
MAX_LOOP_ITERATIONS = 10_000
MAX_CALLS = 10_000
# Below this length no text can be over MAX_SEGMENTS (10 UCS-2 parts of 67 units, 2 per emoji).
_SEGMENTS_SAFE_LENGTH = 10 * 67 // 2
_LOOP = "_loop_budget"
_CONCAT = "_bounded_concat"
_VALUE = "_bounded_value"
_EMIT = "_emit"
_NUMBER = re.compile(r"\d+")
_NESTED_FIELD = re.compile(r":[^{}]*\{")  # "{0:{1}}": a width taken from an argument


def _refuse(what: str) -> TemplateLimitExceeded:
    return TemplateLimitExceeded(f"The template is too costly: {what}.")


class _Budget:
    """What one render may still spend; one per render, through a context variable."""

    __slots__ = ("calls", "characters", "iterations")

    def __init__(self) -> None:
        self.iterations = MAX_LOOP_ITERATIONS
        self.calls = MAX_CALLS
        self.characters = MAX_EMITTED_CHARACTERS


_budget: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar(
    "template_budget", default=None
)


def _current_budget() -> _Budget:
    budget = _budget.get()
    if budget is None:  # rendered outside render_bounded: a fresh budget from here on
        budget = _Budget()
        _budget.set(budget)
    return budget


def _weight(value: Any, limit: int = MAX_VALUE_LENGTH) -> int:
    """Characters and items in a value, counted through nested containers up to `limit`+1."""
    if isinstance(value, str | bytes):
        return len(value)
    if not isinstance(value, list | tuple | dict | set | frozenset):
        return 1
    total = 0
    stack = [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, str | bytes):
            total += len(item)
        elif isinstance(item, dict):
            total += 1
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            total += 1
            stack.extend(item)
        else:
            total += 1
    return total


def _check_size(value: Any, what: str) -> Any:
    if _weight(value) > MAX_VALUE_LENGTH:
        raise _refuse(f"{what} builds a value over {MAX_VALUE_LENGTH:,} characters or items")
    if isinstance(value, int) and value.bit_length() > MAX_INTEGER_BITS:
        raise _refuse(f"{what} builds a number over {MAX_INTEGER_BITS} bits")
    return value


def _check_widths(text: Any, arguments: Any, what: str) -> None:
    """A format may not ask for a width over the value limit, in its text or its arguments."""
    text = str(text)
    for number in _NUMBER.findall(text)[:50]:
        if len(number) > 6 or int(number) > MAX_VALUE_LENGTH:
            raise _refuse(f"{what} asks for a width over {MAX_VALUE_LENGTH:,}")
    if "*" in text or _NESTED_FIELD.search(text):  # widths taken from the arguments
        values = arguments if isinstance(arguments, list | tuple) else [arguments]
        if any(isinstance(v, int) and abs(v) > MAX_VALUE_LENGTH for v in values):
            raise _refuse(f"{what} asks for a width over {MAX_VALUE_LENGTH:,}")


def _check_repeat(base: Any, count: Any, what: str) -> None:
    repeatable = isinstance(count, int) and not isinstance(base, int | float)
    if repeatable and _weight(base) * max(count, 0) > MAX_VALUE_LENGTH:
        raise _refuse(f"{what} repeats a value past {MAX_VALUE_LENGTH:,} characters or items")


def _check_width_arguments(values: Iterable[Any], what: str) -> None:
    for value in values:
        if isinstance(value, int) and value > MAX_VALUE_LENGTH:
            raise _refuse(f"{what} asks for a width over {MAX_VALUE_LENGTH:,}")


def _check_replace(text: Any, old: Any, new: Any, what: str) -> None:
    if isinstance(text, str) and isinstance(old, str) and isinstance(new, str):
        occurrences = text.count(old) if old else len(text) + 1
        if len(text) + occurrences * len(new) > MAX_VALUE_LENGTH:
            raise _refuse(f"{what} grows the text past {MAX_VALUE_LENGTH:,} characters")


def _check_join(items: Any, separator: Any, what: str) -> None:
    if isinstance(items, list | tuple):
        size = _weight(items) + len(items) * len(str(separator or ""))
        if size > MAX_VALUE_LENGTH:
            raise _refuse(f"{what} builds text over {MAX_VALUE_LENGTH:,} characters")


def _string_method_check(name: str, text: str, args: tuple, kwargs: dict[str, Any]) -> None:
    """Checks that run before a string method that can build a long string."""
    if name in ("center", "ljust", "rjust", "zfill"):
        _check_width_arguments([*args, *kwargs.values()], f"str.{name}()")
    elif name == "expandtabs":
        size = args[0] if args else kwargs.get("tabsize", 8)
        _check_repeat(" " * min(max(size, 0), MAX_VALUE_LENGTH + 1), text.count("\t"), what=name)
    elif name in ("format", "format_map"):
        _check_widths(text, [*args, *kwargs.values()], f"str.{name}()")
    elif name == "replace" and len(args) >= 2:
        _check_replace(text, args[0], args[1], "str.replace()")
    elif name == "join" and args:
        _check_join(args[0], text, "str.join()")


def _filter_precheck(name: str, value: Any, args: tuple, kwargs: dict[str, Any]) -> None:
    """Checks that run before a filter that can grow its input (every result is checked after)."""
    what = f"|{name}"
    if name in ("center", "indent", "wordwrap", "truncate", "urlize"):
        _check_width_arguments([*args, *kwargs.values()], what)
    if name == "indent" and isinstance(value, str):
        width = args[0] if args else kwargs.get("width", 4)
        prefix = width if isinstance(width, str) else " " * min(int(width or 0), 10_001)
        _check_repeat(prefix, value.count("\n") + 1, what)
    elif name == "wordwrap" and isinstance(value, str):
        wrap = args[2] if len(args) > 2 else kwargs.get("wrapstring")
        if isinstance(wrap, str):
            _check_repeat(wrap, len(value), what)
    elif name == "format":
        _check_widths(value, [*args, *kwargs.values()], what)
    elif name == "replace" and len(args) >= 2:
        _check_replace(value, args[0], args[1], what)
    elif name == "join":
        _check_join(value, args[0] if args else kwargs.get("d", ""), what)


def _bounded_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    # A filter's first argument is the context, eval context or environment when it asks for
    # one (functools.wraps keeps that marker on the wrapper), then the value filtered.
    offset = 1 if hasattr(function, "jinja_pass_arg") else 0

    @functools.wraps(function)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        if len(args) > offset:
            _filter_precheck(name, args[offset], args[offset + 1 :], kwargs)
        return _check_size(function(*args, **kwargs), what=f"|{name}")

    return bounded


@pass_context
def _loop_budget(context: Context, iterable: Any) -> Iterator[Any]:
    """Every `{% for %}` iterates through this: one budget of iterations per render."""
    budget = _current_budget()
    for item in iterable:
        budget.iterations -= 1
        if budget.iterations < 0:
            raise _refuse(f"its loops run more than {MAX_LOOP_ITERATIONS:,} iterations")
        yield item


@pass_context
def _emit(context: Context, value: Any) -> str:
    """Everything a template writes (into the message, a `{% set %}` block or a macro) is
    charged against one budget of characters per render."""
    text = str(value)
    budget = _current_budget()
    budget.characters -= len(text)
    if budget.characters < 0:
        raise _refuse(f"it writes more than {MAX_EMITTED_CHARACTERS:,} characters in all")
    return text


@pass_context
def _bounded_value(context: Context, value: Any) -> Any:
    """A list, tuple or dict literal: its nested size is checked like any built value."""
    return _check_size(value, "a literal")


def _bounded_concat(parts: list[Any]) -> str:
    """`a ~ b`: Jinja's concatenation, refused past the value limit."""
    return str(_check_size("".join(str(part) for part in parts), "'~'"))


def _bounded_range(*args: int) -> range:
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise _refuse(f"range() of more than {MAX_RANGE:,} items")
    return numbers


def _through(filter_name: str, node: nodes.Expr) -> nodes.Filter:
    return nodes.Filter(node, filter_name, [], [], None, None, lineno=node.lineno)


class _Guard(NodeTransformer):
    """Rewrites a parsed template so that loops, output, literals and `~` are budgeted."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = _through(_LOOP, node.iter)  # type: ignore[arg-type]
        return node

    def visit_Output(self, node: nodes.Output) -> nodes.Node:
        self.generic_visit(node)
        node.nodes = [
            _through(_EMIT, nodes.Const(child.data, lineno=child.lineno))
            if isinstance(child, nodes.TemplateData)
            else _through(_EMIT, child)
            for child in node.nodes
        ]
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return nodes.Filter(
            nodes.List(list(node.nodes), lineno=node.lineno),
            _CONCAT,
            [],
            [],
            None,
            None,
            lineno=node.lineno,
        )

    def _literal(self, node: nodes.Expr) -> nodes.Node:
        self.generic_visit(node)
        return _through(_VALUE, node)

    visit_List = _literal
    visit_Dict = _literal

    def visit_Tuple(self, node: nodes.Tuple) -> nodes.Node:
        if node.ctx != "load":
            return self.generic_visit(node)
        return self._literal(node)


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """A sandbox (no Python internals, no mutation of lists and dicts) whose templates cannot
    build large values, write much or loop for long."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.globals["range"] = _bounded_range
        self.globals.pop("lipsum", None)  # writes any amount of text on request
        self.filters = {
            name: _bounded_filter(name, function) for name, function in self.filters.items()
        }
        self.filters |= {
            _LOOP: _loop_budget,
            _CONCAT: _bounded_concat,
            _VALUE: _bounded_value,
            _EMIT: _emit,
        }

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        template = super()._parse(source, name, filename)
        return _Guard().visit(template)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        what = f"'{operator}'"
        if operator == "*":
            _check_repeat(left, right, what)
            _check_repeat(right, left, what)
        elif operator == "**":
            integers = isinstance(left, int) and isinstance(right, int) and abs(left) > 1
            if integers and right * left.bit_length() > MAX_INTEGER_BITS:
                raise _refuse(f"{what} builds a number over {MAX_INTEGER_BITS} bits")
        elif operator == "+":
            if not isinstance(left, int | float) and _weight(left) + _weight(right) > (
                MAX_VALUE_LENGTH
            ):
                raise _refuse(f"{what} builds a value over {MAX_VALUE_LENGTH:,} characters")
        elif operator == "%" and isinstance(left, str):
            _check_widths(left, right, what)
        return _check_size(super().call_binop(context, operator, left, right), what)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        budget = _current_budget()
        budget.calls -= 1
        if budget.calls < 0:
            raise _refuse(f"it makes more than {MAX_CALLS:,} calls")
        method = getattr(__obj, "__wrapped__", __obj)  # str.format comes wrapped by the sandbox
        owner = getattr(method, "__self__", None)
        if isinstance(owner, str) and isinstance(method, types.BuiltinMethodType):
            _string_method_check(method.__name__, owner, args, kwargs)
        return _check_size(super().call(__context, __obj, *args, **kwargs), "a call")


def _chunks_bounded(chunks: Iterable[str]) -> str:
    """Join the rendered pieces, stopping as soon as the text is far past the output limit."""
    pieces: list[str] = []
    length = 0
    for chunk in chunks:
        length += len(chunk)
        if length > MAX_OUTPUT_CHARACTERS * 2:  # stripped later: some room for whitespace
            raise _refuse(f"it renders more than {MAX_OUTPUT_CHARACTERS:,} characters")
        pieces.append(chunk)
    return "".join(pieces)


def render_bounded(template: Any, variables: dict[str, Any]) -> str:
    """Render a compiled template within the budgets; any failure is a TemplateRenderError."""
    token = _budget.set(_Budget())
    try:
        text = _chunks_bounded(
            template.root_render_func(template.new_context(variables, shared=True))
        ).strip()
    except TemplateRenderError:
        raise
    except TemplateError as error:
        detail = str(error)
    except RecursionError:
        raise _refuse("its macros call themselves too deeply") from None
    except (TypeError, ValueError, ArithmeticError, LookupError) as error:
        detail = f"{type(error).__name__}: {error}"
    else:
        if len(text) > MAX_OUTPUT_CHARACTERS:
            raise _refuse(f"it renders more than {MAX_OUTPUT_CHARACTERS:,} characters")
        if len(text) > _SEGMENTS_SAFE_LENGTH and sms_length(text).segments > MAX_SEGMENTS:
            raise _refuse(f"it renders a message of more than {MAX_SEGMENTS} SMS segments")
        return text
    finally:
        _budget.reset(token)
    raise TemplateRenderError(f"Template error: {detail}", errors={"template": [detail]})
