"""A campaign's configuration: parsed and validated as a whole, errors named per field.

Shape (JSON):
    {"segment": "contact.attributes.plan == 'gold'",     CEL over `contact`
     "template": "Hi {{ contact.attributes.first_name }}", Jinja, sandboxed, StrictUndefined
     "topic": "marketing",
     "start_at": "2026-11-24T09:00:00Z" | null,
     "send_window": {"start": "09:00", "end": "20:00"},     recipient local time
     "rate_per_second": 10,                                SMS segments per second
     "frequency_cap": {"max_messages": 3, "per_hours": 24} | null}

Guard-rails checked here, when a campaign is saved (a 400 naming the field): the rate is at most
CAMPAIGNS_MAX_RATE_PER_SECOND; the topic is not one that needs no opt-in (`transactional`), so a
campaign cannot borrow the consent of transactional messages; the template is rendered against
a representative contact inside the bounded sandbox (`campaigns.sandbox`), so a template that
builds huge values, loops a million times or writes more than 1,600 characters or ten SMS
segments is refused before anything is stored.
"""

import json
import re
from dataclasses import dataclass
from datetime import datetime, time
from functools import lru_cache
from typing import Any

import cel
from django.conf import settings
from django.utils.dateparse import parse_datetime
from jinja2 import ChainableUndefined, StrictUndefined, TemplateError

from campaigns.exceptions import InvalidCampaignConfig, TemplateLimitExceeded, TemplateRenderError
from campaigns.sandbox import MAX_OUTPUT_CHARACTERS, BoundedSandbox, render_bounded
from campaigns.windows import DEFAULT_WINDOW, SendWindow
from core.errors import InvalidInput
from core.expressions import compile_expression

MAX_TEMPLATE_LENGTH = MAX_OUTPUT_CHARACTERS
TOPIC_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
SEGMENT_VARIABLES = ("contact",)
DEFAULT_WINDOW_RAW = DEFAULT_WINDOW.as_dict()
KNOWN_KEYS = {
    "segment",
    "template",
    "topic",
    "start_at",
    "send_window",
    "rate_per_second",
    "frequency_cap",
}


@dataclass(frozen=True)
class FrequencyCap:
    max_messages: int
    per_hours: int


@dataclass(frozen=True)
class CampaignConfig:
    segment: str
    template: str
    topic: str
    start_at: datetime | None
    send_window: SendWindow
    rate_per_second: int
    frequency_cap: FrequencyCap | None


template_environment = BoundedSandbox(undefined=StrictUndefined, autoescape=False)
# The save-time check renders with whatever the template reads present: a missing attribute
# renders empty instead of failing, so the check sees the template's own cost.
_probe_environment = BoundedSandbox(undefined=ChainableUndefined, autoescape=False)
# What a representative recipient looks like when a template is checked at save.
SAMPLE_CONTACT = {
    "phone": "+14155550123",
    "country": "US",
    "time_zone": "America/Los_Angeles",
    "attributes": {},
}


@lru_cache(maxsize=512)
def compile_template(source: str) -> Any:
    """A sandboxed Jinja template (cached per text); syntax errors are field errors."""
    try:
        return template_environment.from_string(source)
    except TemplateError as error:
        line = getattr(error, "lineno", None)
        where = f" (line {line})" if line else ""
        raise TemplateRenderError(
            f"Template syntax error{where}: {error}", errors={"template": [str(error)]}
        ) from None


@lru_cache(maxsize=512)
def _globals_of(template: Any) -> dict[str, Any]:
    return dict(template.globals)  # a ChainMap: slow to merge once per contact


def render_template(template: Any, context: dict[str, Any]) -> str:
    """Render with StrictUndefined (a missing variable is an error, never an empty string),
    inside the sandbox's budgets (size, loops, calls, 1,600 characters, ten segments).

    Calls the compiled render function with one flat context instead of `template.render`,
    which merges Jinja's globals again on every call (a third of a bulk launch's time).
    """
    return render_bounded(template, {**_globals_of(template), **context})


def template_cost_check(source: str, context: dict[str, Any]) -> None:
    """Refuse, at save, a template whose render against `context` goes over a limit.

    Rendered leniently (missing variables are empty), so only the cost is judged here; the
    per-recipient errors of real data are reported at launch or send time.
    """
    try:
        probe = _probe_environment.from_string(source)
        render_bounded(probe, {**dict(probe.globals), **context})
    except TemplateLimitExceeded as error:
        raise TemplateLimitExceeded(error.detail) from None
    except (TemplateError, TemplateRenderError):
        return  # a data-dependent error, not a cost: compile_template judged the syntax
    except Exception:  # lenient values can upset a filter or a method: not a cost either
        return


def compile_segment(source: str) -> cel.Program:
    return compile_expression(source, allowed_variables=SEGMENT_VARIABLES, field="config.segment")


def _integer(value: Any) -> int | None:
    """A JSON integer (2 or 2.0, as JSON Schema counts them); None for anything else."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not value.is_integer():
        return None
    return int(value)


def _parse_time(value: Any, field: str, errors: dict[str, list[str]]) -> time | None:
    if not isinstance(value, str) or not re.fullmatch(r"[0-9]{2}:[0-9]{2}", value):
        errors.setdefault(field, []).append("Use HH:MM (24-hour), e.g. 09:00.")
        return None
    hours, minutes = int(value[:2]), int(value[3:])
    if hours > 23 or minutes > 59:
        errors.setdefault(field, []).append("Use HH:MM (24-hour), e.g. 09:00.")
        return None
    return time(hours, minutes)


def config_parse(raw: Any, *, saving: bool = True) -> CampaignConfig:
    """Validate a whole config; every problem is reported at once under `config.<field>`.

    `saving=False` is the send path re-reading a config checked when it was saved and launched:
    it skips the save-time guard-rails (the template's trial render, the topic rule), so a
    running campaign never stops on a rule made after its launch (its rate is clamped instead).
    """
    if not isinstance(raw, dict):
        raise InvalidCampaignConfig(
            "The config must be a JSON object.", errors={"config": ["Must be an object."]}
        )
    errors: dict[str, list[str]] = {}
    unknown = sorted(set(raw) - KNOWN_KEYS)
    if unknown:
        errors["config"] = [f"Unknown keys: {', '.join(unknown)}."]

    segment = raw.get("segment", "true")
    if not isinstance(segment, str):
        errors["config.segment"] = ["Must be a CEL expression (string)."]
    else:
        try:
            compile_segment(segment)
        except InvalidInput as error:
            errors["config.segment"] = [error.detail]

    template = raw.get("template")
    if not isinstance(template, str) or not template.strip():
        errors["config.template"] = ["A message template is required."]
    elif len(template) > MAX_TEMPLATE_LENGTH:
        errors["config.template"] = [f"At most {MAX_TEMPLATE_LENGTH} characters."]
    else:
        try:
            compile_template(template)
            if saving:
                template_cost_check(template, {"contact": SAMPLE_CONTACT})
        except TemplateRenderError as error:
            errors["config.template"] = [error.detail]

    topic = raw.get("topic", "marketing")
    if not isinstance(topic, str) or not TOPIC_PATTERN.match(topic):
        errors["config.topic"] = ["Lower-case letters, digits, '-' or '_', at most 64."]
    elif saving and topic in settings.CAMPAIGNS_IMPLICIT_CONSENT_TOPICS:
        errors["config.topic"] = [
            f"'{topic}' is for one-to-one transactional messages (it needs no opt-in); "
            "a campaign needs a topic its recipients opted in to, e.g. 'marketing'."
        ]

    start_at = None
    if raw.get("start_at") not in (None, ""):
        value = raw["start_at"]
        start_at = parse_datetime(value) if isinstance(value, str) else None
        if start_at is None or start_at.tzinfo is None:
            errors["config.start_at"] = ["An ISO 8601 date-time with a UTC offset."]
            start_at = None

    window_raw = raw.get("send_window", DEFAULT_WINDOW_RAW)
    window = None
    if not isinstance(window_raw, dict) or set(window_raw) - {"start", "end"}:
        errors["config.send_window"] = ['An object {"start": "HH:MM", "end": "HH:MM"}.']
    else:
        start = _parse_time(
            window_raw.get("start", DEFAULT_WINDOW_RAW["start"]), "config.send_window.start", errors
        )
        end = _parse_time(
            window_raw.get("end", DEFAULT_WINDOW_RAW["end"]), "config.send_window.end", errors
        )
        if start is not None and end is not None:
            if start == end:
                errors["config.send_window"] = ["The window is empty (start equals end)."]
            else:
                window = SendWindow(start=start, end=end)

    rate = _integer(raw.get("rate_per_second", 10))
    ceiling = settings.CAMPAIGNS_MAX_RATE_PER_SECOND
    if rate is None or not 1 <= rate <= ceiling:
        errors["config.rate_per_second"] = [
            f"An integer from 1 to {ceiling} (CAMPAIGNS_MAX_RATE_PER_SECOND)."
        ]

    cap = None
    cap_raw = raw.get("frequency_cap")
    if cap_raw is not None:
        is_object = isinstance(cap_raw, dict) and not set(cap_raw) - {"max_messages", "per_hours"}
        max_messages = _integer(cap_raw.get("max_messages")) if is_object else None
        per_hours = _integer(cap_raw.get("per_hours", 24)) if is_object else None
        if (
            max_messages is None
            or per_hours is None
            or not 1 <= max_messages <= 100
            or not 1 <= per_hours <= 24 * 31
        ):
            errors["config.frequency_cap"] = [
                '{"max_messages": 1..100, "per_hours": 1..744}, or null for no cap.'
            ]
        else:
            cap = FrequencyCap(max_messages=max_messages, per_hours=per_hours)

    if errors:
        raise InvalidCampaignConfig("The campaign configuration is invalid.", errors=errors)
    assert window is not None
    return CampaignConfig(
        segment=str(segment),
        template=str(template),
        topic=str(topic),
        start_at=start_at,
        send_window=window,
        rate_per_second=int(rate or 0),
        frequency_cap=cap,
    )


@lru_cache(maxsize=256)
def _config_from_json(text: str) -> CampaignConfig:
    raw = json.loads(text)
    # A campaign launched before the rate ceiling was lowered keeps running, at the ceiling.
    rate = raw.get("rate_per_second")
    ceiling = settings.CAMPAIGNS_MAX_RATE_PER_SECOND
    if isinstance(rate, int) and not isinstance(rate, bool) and rate > ceiling:
        raw["rate_per_second"] = ceiling
    return config_parse(raw, saving=False)


def config_cached(raw: dict[str, Any]) -> CampaignConfig:
    """config_parse for the send path: a launched config never changes, parse it once."""
    return _config_from_json(json.dumps(raw, sort_keys=True))
