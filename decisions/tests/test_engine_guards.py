"""The engine's index of leading comparisons: it changes what a decision costs, not its result."""

from datetime import UTC, datetime

import cel
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from decisions import engine

RECEIVED_AT = datetime(2026, 1, 1, tzinfo=UTC)
CONDITIONS = [
    'event.country == "DE" && event.amount > 100',
    "event.country == 'FR' && event.amount / event.age > 2",
    'event.country == "DE" || event.amount > 100',
    'event.country == "NL" ? event.amount > 5 : false',
    'event.amount > 100 && event.country == "DE"',
    '(event.country == "US" && event.age >= 21)',
    'event.country == "GB" && event.tags.exists(tag, tag == "vip")',
    "event.age >= 18 && event.amount != 3",
    "event.amount > 100 && event.country == 'DE'",
    "event.amount != 7 && event.age / 0 == 1",
    "event.age <= 30 && true",
    "has(event.tags) && event.age > 3",
    "event.country == 'DE' && event.age > 30 && event.amount <= 250",
    "event.amount == 3",
    "event.age < 40 && event.country == 'FR'",
    "event.amount > 300 && true",
    "event.age <= 60 && event.amount >= 5",
]


@pytest.mark.parametrize(
    ("source", "guard"),
    [
        ('event.country == "DE" && event.amount > 100', ("country", "DE")),
        ("event.country=='FR'&&true", ("country", "FR")),
        ('event.country == "D&&E" && true', ("country", "D&&E")),
        ('event.country == "DE" || event.amount > 100', None),
        ('event.country == "DE" && event.amount > 1 || true', None),
        ('event.country == "DE" && event.age > 1 ? true : false', None),
        ('event.amount > 100 && event.country == "DE"', ("amount", 100)),
        ('(event.country == "DE" && true)', None),
        ('event.country == "D\\"E" && true', None),
        ('event.country == r"DE" && true', None),
        ('event.country == "DE" // it\'s\n && true', None),
        ('event.country == "DE"', ("country", "DE")),
        ("event.amount > 100 && true", ("amount", 100)),
        ("event.amount <= -7 && true", ("amount", -7)),
        ("event.amount > 0123 && true", None),
        ("event.amount > 1.5 && true", None),
        ("event.amount > 99999999999999999999 && true", None),
    ],
)
def test_it_checks_only_leading_comparisons_with_a_literal_at_the_top_level(source, guard):
    chain = engine.condition_chain(source)

    assert (chain and (chain.checks[0][0], chain.checks[0][2])) == guard


def test_it_decides_a_condition_of_checks_only_without_cel():
    partial = engine.condition_chain('event.amount > 5 && event.country == "DE" && size(event) > 1')
    whole = engine.condition_chain('event.amount > 5 && event.country == "DE"')

    assert [check[0] for check in partial.checks] == ["amount", "country"]
    assert not partial.complete
    assert whole.complete


def _versions(conditions: list[str]) -> list[engine.CompiledVersion]:
    return [
        engine.CompiledVersion(
            version_id=index + 1,
            rule_key=f"rule-{index}",
            number=1,
            status="published",
            priority=index,
            outcome="decline",
            program=engine.compile_condition(source),
        )
        for index, source in enumerate(conditions)
    ]


RULE_SET = engine.rule_set(_versions(CONDITIONS))
# One condition reads the whole payload: the context must then carry all of it.
WHOLE_PAYLOAD_SET = engine.rule_set(_versions([*CONDITIONS, "size(event) > 2"]))
values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 500),
    st.floats(0, 500, allow_nan=False),
    st.sampled_from(["DE", "FR", "NL", "US", "GB", "de", ""]),
    st.lists(st.sampled_from(["vip", "new"]), max_size=2),
)
payloads = st.dictionaries(st.sampled_from(["country", "amount", "age", "tags", "other"]), values)


def test_it_reads_only_the_fields_the_conditions_name_unless_one_reads_the_whole_payload():
    assert RULE_SET.event_fields == ("age", "amount", "country", "tags")
    assert WHOLE_PAYLOAD_SET.event_fields is None


def loan_decision(rules, payload):
    """The engine's decision on a loan application under `rules`, no policy or lists."""
    return engine.decide(
        event_type="loan_application",
        payload=payload,
        received_at=RECEIVED_AT,
        versions=rules,
        policy=engine.PolicySpec(event_type="loan_application"),
        lists={},
    )


def cel_results(rules, payload) -> list[str]:
    """Each rule's result as CEL itself gives it: the oracle the engine's shortcuts must match."""
    context = cel.Context({"event": payload})
    results = []
    for version in rules.versions:
        try:
            value = version.program.execute(context)
        except Exception:
            value = None
        results.append("true" if value is True else "false" if value is False else "error")
    return results


@settings(max_examples=400, deadline=None)
@given(payload=payloads, whole=st.booleans())
def test_it_gives_every_rule_the_result_cel_gives_it(payload, whole):
    rules = WHOLE_PAYLOAD_SET if whole else RULE_SET
    result = loan_decision(rules, payload)

    expected = cel_results(rules, payload)
    assert [entry["result"] for entry in result.trace] == expected


FIELDS = ["amount", "age", "country"]
TEXTS = ["DE", "FR", "de", ""]
integer_checks = st.builds(
    lambda field, op, literal: f"event.{field} {op} {literal}",
    st.sampled_from(FIELDS),
    st.sampled_from(["==", "!=", "<", "<=", ">", ">="]),
    st.integers(-3, 8),
)
text_checks = st.builds(
    lambda field, text: f'event.{field} == "{text}"',
    st.sampled_from(FIELDS),
    st.sampled_from(TEXTS),
)
# Conjuncts the engine cannot decide: CEL runs the condition from the first of them on.
other_conjuncts = st.sampled_from(
    ["true", "false", "event.age / 0 == 1", "has(event.tags)", "event.amount + 1 > 2"]
)
conditions = st.lists(
    st.one_of(integer_checks, integer_checks, text_checks, other_conjuncts), min_size=1, max_size=4
).map(" && ".join)
# Mostly integers near the literals, so that checks often meet values equal to their literals;
# then values of other types (CEL decides those) and missing fields.
MISSING = object()
mixed_values = st.sampled_from([*range(-4, 10), None, True, False, 2.0, -0.5, "DE", "", MISSING])
mixed_payloads = st.fixed_dictionaries({field: mixed_values for field in [*FIELDS, "tags"]}).map(
    lambda payload: {field: value for field, value in payload.items() if value is not MISSING}
)


@settings(max_examples=600, deadline=None)
@given(sources=st.lists(conditions, min_size=1, max_size=12), payload=mixed_payloads)
def test_its_index_of_leading_checks_gives_every_rule_of_any_set_the_result_cel_gives_it(
    sources, payload
):
    rules = engine.rule_set(_versions(sources))

    result = loan_decision(rules, payload)

    expected = cel_results(rules, payload)
    assert result.results == expected


def test_it_decides_rules_made_of_comparisons_alone_without_building_a_cel_context(monkeypatch):
    rules = engine.rule_set(
        _versions(
            [
                'event.amount > 100 && event.country == "DE" && event.age >= 18',
                'event.amount > 500 && event.country == "FR"',
                "event.age < 18",
            ]
        )
    )

    def no_context(*args, **kwargs):
        raise AssertionError("a CEL context was built")

    monkeypatch.setattr(engine, "_event_context", no_context)
    result = loan_decision(rules, {"amount": 600, "country": "DE", "age": 30})

    assert result.results == ["true", "false", "false"]
    assert [(entry["result"], entry["decided"]) for entry in result.trace] == [
        ("true", True),
        ("false", False),
        ("false", False),
    ]


def test_it_gives_every_decision_trace_entries_of_its_own():
    rules = engine.rule_set(_versions(["event.age < 18", "event.age >= 18"]))

    def trace(age):
        return loan_decision(rules, {"age": age}).trace

    first = trace(30)
    first[0]["result"] = "changed by a caller"
    second = trace(30)

    assert [entry["result"] for entry in second] == ["false", "true"]
    assert [entry["result"] for entry in trace(10)] == ["true", "false"]
    assert rules.entries[0]["result"] == "false"
