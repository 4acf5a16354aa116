"""What users write in CEL is bounded when it is saved, so no accepted expression is costly."""

import pytest

from core.expressions import (
    MAX_COMPREHENSION_BODY,
    MAX_COMPREHENSION_NESTING,
    MAX_NESTING_DEPTH,
    MAX_VARIABLE_READS,
    ExpressionError,
    compile_expression,
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
