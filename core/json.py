"""JSON that PostgreSQL's JSONB can store.

JSONB refuses three things Python's `json` module happily produces: a NUL character in a string
(`\\u0000`), an unpaired surrogate (not valid UTF-8), and a number outside the JSON grammar
(`1e400` parses as infinity, `NaN`). Stored as they come, they fail at the database with a 500;
checked here, the caller gets a 400 naming the field.
"""

import json
import math
from typing import Any

from core.errors import InvalidInput


def json_unstorable_reason(value: Any) -> str | None:
    """Why JSONB cannot store `value` (keys included), or None when it can."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return "NUL characters are not allowed."
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return "Unpaired surrogate characters are not allowed."
        elif isinstance(item, float):
            if not math.isfinite(item):
                return "Numbers must be finite (at most about 1.8e308)."
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return None


def json_for_database(value: Any, *, field: str) -> Any:
    """A JSON round trip of `value`, refused with InvalidInput naming `field` when JSONB cannot
    store it."""
    reason = json_unstorable_reason(value)
    if reason is not None:
        raise InvalidInput(f"{field}: {reason}", errors={field: [reason]})
    return json.loads(json.dumps(value))
