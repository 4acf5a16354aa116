"""What users write in CEL is bounded when it is saved, so no accepted expression is costly."""

import cel
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.expressions import (
    MAX_COMPREHENSION_BODY,
    MAX_COMPREHENSION_NESTING,
    MAX_NESTING_DEPTH,
    MAX_VARIABLE_READS,
    EvaluationError,
    ExpressionError,
    as_set_lookups,
    build_context,
    compile_expression,
    evaluate,
)


def accepted(source: str) -> bool:
    try:
        compile_expression(source, allowed_variables=["payload"])
    except ExpressionError:
        return False
    return True


def test_it_refuses_a_comprehension_inside_a_comprehension():
    nested = "payload.a.exists(x, payload.b.exists(y, payload.c.all(z, x + y + z > 0)))"

    with pytest.raises(ExpressionError) as refused:
        compile_expression(nested, allowed_variables=["payload"])

    assert "inside another" in refused.value.errors["condition"][0]
    assert MAX_COMPREHENSION_NESTING == 1


def test_it_accepts_comprehensions_side_by_side_and_chained():
    assert accepted("payload.a.exists(x, x > 1) && payload.b.all(y, y < 9)")
    assert accepted("payload.a.map(x, x * 2).exists(y, y > 3)")


def test_it_refuses_brackets_nested_past_the_bound():
    deep = "(" * (MAX_NESTING_DEPTH + 1) + "payload.a" + ")" * (MAX_NESTING_DEPTH + 1) + " > 1"
    shallow = "(" * MAX_NESTING_DEPTH + "payload.a" + ")" * MAX_NESTING_DEPTH + " > 1"

    assert not accepted(deep)
    assert accepted(shallow)


def test_it_does_not_count_brackets_or_macros_inside_string_literals():
    assert accepted('payload.name == "((((.exists(x, ((((" && payload.a.exists(x, x == ")))")')
    assert accepted("payload.name == '" + "(" * 100 + "'")


def test_it_refuses_an_expression_that_reads_its_variables_too_often():
    within = " && ".join(["payload.a > 1"] * MAX_VARIABLE_READS)
    beyond = " && ".join(["payload.a > 1"] * (MAX_VARIABLE_READS + 1))

    assert accepted(within)
    with pytest.raises(ExpressionError, match=f"limit is {MAX_VARIABLE_READS}"):
        compile_expression(beyond, allowed_variables=["payload"])


def test_reads_of_a_comprehension_variable_do_not_count_against_the_cap():
    body = " && ".join(["x > 1"] * (MAX_VARIABLE_READS + 4))

    assert accepted(f"payload.a.all(x, {body})")


def test_it_refuses_a_comprehension_body_over_the_bound():
    body = " || ".join(["x == 1"] * 100)

    with pytest.raises(ExpressionError, match="body is"):
        compile_expression(f"payload.a.exists(x, {body})", allowed_variables=["payload"])
    assert len(body) > MAX_COMPREHENSION_BODY


# Named lists are looked up as sets: the rewrite keeps CEL's meaning, and only where it is exact.


@pytest.mark.parametrize(
    ("source", "compiled"),
    [
        ("event.country in lists.blocked", 'in_list("blocked", event.country)'),
        ('event["id"] in lists["vip ids"]', 'in_list("vip ids", event["id"])'),
        (
            "event.a in lists.x && (event.b in lists.y || risk.score > 0.5)",
            'in_list("x", event.a) && (in_list("y", event.b) || risk.score > 0.5)',
        ),
        ("lists.a.exists(v, v in lists.b)", 'lists.a.exists(v, in_list("b", v))'),
        # Operators binding tighter than `in` (or a list that is itself an expression) leave
        # the shape alone, and so does text inside a string.
        ("event.a + event.b in lists.x", "event.a + event.b in lists.x"),
        ("-event.a in lists.x", "-event.a in lists.x"),
        ("event.a in lists.x + lists.y", "event.a in lists.x + lists.y"),
        ('"a in lists.x" == event.s', '"a in lists.x" == event.s'),
        ("event.a in other.x", "event.a in other.x"),
    ],
)
def test_membership_in_a_named_list_compiles_to_a_set_lookup(source, compiled):
    assert as_set_lookups(source, "lists") == compiled


scalars = st.one_of(
    st.booleans(),
    st.integers(-3, 3),
    st.floats(-3, 3, allow_nan=False).map(lambda x: round(x, 1)),
    st.sampled_from(["a", "b", "1", ""]),
    st.lists(st.integers(0, 2), max_size=2),
)


@settings(max_examples=150, deadline=None)
@given(value=scalars, values=st.lists(scalars.filter(lambda v: not isinstance(v, (bool, list)))))
def test_a_set_lookup_answers_as_cel_membership_does(value, values):
    variables = {"event": {"value": value}, "lists": {"named": values}}
    as_cel = cel.compile("event.value in lists.named").execute(variables)
    as_set = compile_expression(
        "event.value in lists.named", allowed_variables=["event", "lists"], set_variable="lists"
    ).execute(build_context(variables, sets={"named": values}))
    assert as_set is as_cel


def test_a_set_lookup_of_a_list_that_is_gone_is_an_error_as_in_cel():
    program = compile_expression(
        "event.v in lists.gone", allowed_variables=["event", "lists"], set_variable="lists"
    )
    with pytest.raises(EvaluationError):
        evaluate(program, build_context({"event": {"v": 1}, "lists": {}}, sets={}))
