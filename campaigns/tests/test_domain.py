"""Pure pieces: numbers, SMS segments, quiet hours, config validation, fast segments."""

from datetime import UTC, datetime, time

import pytest

from campaigns.config import config_parse
from campaigns.exceptions import InvalidCampaignConfig, InvalidPhone
from campaigns.phones import candidate_zones, phone_normalize
from campaigns.segments import Memo, segment_compile, segment_reads, template_reads
from campaigns.sms import sms_length
from campaigns.windows import SendWindow, inside_window, next_allowed
from core.expressions import EvaluationError

WINDOW = SendWindow(start=time(9, 0), end=time(20, 0))


@pytest.mark.parametrize(
    "raw",
    [
        "+1 415 555 2671",
        "(415) 555-2671",
        "415.555.2671",
        "+14155552671",
        "1-415-555-2671",
        "tel:+1-415-555-2671",
    ],
)
def test_it_normalises_any_form_of_a_valid_number_to_one_key(raw):
    assert phone_normalize(raw) == "+14155552671"


@pytest.mark.parametrize("raw", ["", "123", "+1 555", "not a number", "+4412"])
def test_it_rejects_an_invalid_number_as_a_field_error(raw):
    with pytest.raises(InvalidPhone) as raised:
        phone_normalize(raw)
    assert list(raised.value.errors) == ["phone"]


def test_it_derives_candidate_zones_from_the_number_unless_overridden():
    assert candidate_zones("+14155552671") == ("America/Los_Angeles",)
    assert len(candidate_zones("+61412345678")) > 1
    assert candidate_zones("+61412345678", "Australia/Perth") == ("Australia/Perth",)


@pytest.mark.parametrize(
    ("text", "encoding", "segments"),
    [
        ("a" * 160, "GSM-7", 1),
        ("a" * 161, "GSM-7", 2),
        ("a" * 306, "GSM-7", 2),
        ("a" * 307, "GSM-7", 3),
        ("€" * 80, "GSM-7", 1),  # extension characters cost two septets
        ("€" * 81, "GSM-7", 2),
        ("é" * 160, "GSM-7", 1),  # é is in the GSM-7 basic set
        ("ä" * 70 + "ç", "UCS-2", 2),  # ç is not: the whole message becomes UCS-2
        ("ç" * 70, "UCS-2", 1),
        ("ç" * 134, "UCS-2", 2),
        ("ç" * 135, "UCS-2", 3),
        ("😀" * 35, "UCS-2", 1),  # an emoji is two UTF-16 units
        ("😀" * 36, "UCS-2", 2),
    ],
)
def test_it_counts_sms_segments(text, encoding, segments):
    length = sms_length(text)
    assert (length.encoding, length.segments) == (encoding, segments)


def test_it_allows_a_send_only_inside_the_window_in_every_zone():
    noon_utc = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    assert inside_window(noon_utc, ("Europe/London",), WINDOW)  # 13:00 local
    assert not inside_window(noon_utc, ("Europe/London", "Asia/Tokyo"), WINDOW)  # 21:00 Tokyo


def test_it_finds_the_next_minute_allowed_in_every_zone():
    # 21:00 UTC: London 22:00 (closed), New York 17:00 (open) -> next: London 09:00 = 08:00 UTC,
    # when New York is 04:00 (closed) ... the first moment both are open is 13:00 UTC.
    moment = datetime(2026, 6, 1, 21, 0, tzinfo=UTC)
    allowed = next_allowed(moment, ("Europe/London", "America/New_York"), WINDOW)
    assert allowed == datetime(2026, 6, 2, 13, 0, tzinfo=UTC)
    assert inside_window(allowed, ("Europe/London", "America/New_York"), WINDOW)


def test_it_gives_up_when_the_zones_never_share_the_window():
    narrow = SendWindow(start=time(9, 0), end=time(10, 0))
    moment = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)
    assert next_allowed(moment, ("Europe/London", "Asia/Tokyo"), narrow) is None


def test_it_handles_a_window_across_midnight():
    night_shift = SendWindow(start=time(22, 0), end=time(2, 0))
    assert night_shift.contains(time(23, 30))
    assert night_shift.contains(time(1, 0))
    assert not night_shift.contains(time(12, 0))


def test_it_reports_every_config_error_by_field():
    with pytest.raises(InvalidCampaignConfig) as raised:
        config_parse(
            {
                "segment": "contact.attributes.plan ==",
                "template": "Hi {{ name",
                "send_window": {"start": "25:00", "end": "20:00"},
                "rate_per_second": 0,
                "frequency_cap": {"max_messages": 0},
                "topic": "Bad Topic",
                "extra": 1,
            }
        )
    assert set(raised.value.errors) == {
        "config",
        "config.segment",
        "config.template",
        "config.send_window.start",
        "config.rate_per_second",
        "config.frequency_cap",
        "config.topic",
    }


def test_it_refuses_a_segment_naming_an_unknown_variable():
    with pytest.raises(InvalidCampaignConfig) as raised:
        config_parse({"segment": "customer.plan == 'gold'", "template": "Hi"})
    assert "customer" in raised.value.errors["config.segment"][0]


def test_it_applies_defaults():
    config = config_parse({"template": "Hi"})
    assert config.send_window.as_dict() == {"start": "08:00", "end": "21:00"}
    assert (config.topic, config.rate_per_second, config.frequency_cap) == ("marketing", 10, None)


@pytest.mark.parametrize(
    ("source", "attributes", "expected"),
    [
        ("contact.attributes.plan == 'gold'", {"plan": "gold"}, True),
        ("contact.attributes.plan == 'gold'", {"plan": "free"}, False),
        ("contact.attributes.orders > 3 && contact.country == 'US'", {"orders": 5}, True),
        (
            "contact.attributes.vip == true || contact.attributes.plan == 'gold'",
            {"plan": "gold"},
            True,
        ),
        ("'contact.attributes.x' == 'contact.attributes.x'", {}, True),  # strings untouched
        ("has(contact.attributes.plan)", {"plan": "gold"}, True),  # nested form
        ("has(contact.attributes.plan)", {}, False),
        ("'plan' in contact.attributes", {"plan": 1}, True),  # the whole map: nested form
    ],
)
def test_it_evaluates_segments_the_same_in_flat_and_nested_form(source, attributes, expected):
    segment = segment_compile(source)
    contact = {"phone": "+14155552671", "country": "US", "time_zone": "", "attributes": attributes}
    assert segment.matches(**contact) is expected


def test_it_treats_a_missing_attribute_as_an_evaluation_error():
    segment = segment_compile("contact.attributes.plan == 'gold'")
    with pytest.raises(EvaluationError):
        segment.matches(phone="+1", country="US", time_zone="", attributes={})


def test_it_knows_what_segments_and_templates_read():
    reads = segment_reads("contact.attributes.plan == 'gold' && contact.country == 'US'")
    assert (reads.fields, reads.attributes) == (("country",), ("plan",))
    reads = template_reads("Hi {{ contact.attributes.first_name|title }} ({{ contact.phone }})")
    assert (reads.fields, reads.attributes) == (("phone",), ("first_name",))
    assert template_reads("{% for x in contact.attributes %}{{ x }}{% endfor %}") is None
    assert template_reads("{{ other }}") is None


@pytest.mark.parametrize(
    "source",
    [
        "contact.attributes.plan == 'gold'",  # one attribute: the short key
        "contact.attributes.plan == 'gold' && contact.country == 'US'",  # a field and an attribute
    ],
)
def test_it_evaluates_each_distinct_input_once_and_unhashable_ones_every_time(source):
    memo = Memo(segment_reads(source))
    computed: list[str] = []

    def contact(plan: object) -> dict:
        return {"phone": "+1", "country": "US", "time_zone": "", "attributes": {"plan": plan}}

    def evaluate(label: str) -> str:
        computed.append(label)
        return label

    results = [
        memo.get(contact("gold"), lambda: evaluate("gold 1")),
        memo.get(contact("gold"), lambda: evaluate("gold 2")),
        memo.get(contact("free"), lambda: evaluate("free")),
        memo.get({**contact(""), "attributes": {}}, lambda: evaluate("missing 1")),
        memo.get({**contact(""), "attributes": {}}, lambda: evaluate("missing 2")),
        memo.get(contact(["gold"]), lambda: evaluate("list 1")),
        memo.get(contact(["gold"]), lambda: evaluate("list 2")),
    ]

    assert results == ["gold 1", "gold 1", "free", "missing 1", "missing 1", "list 1", "list 2"]
    assert computed == ["gold 1", "free", "missing 1", "list 1", "list 2"]
