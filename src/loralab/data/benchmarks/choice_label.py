"""Reading the index of the correct choice from a label field."""

from __future__ import annotations

from typing import Any

from loralab.data.fields import fail, require_field


def label_index(fields: dict, key: str, where: str, count: int, *, first: int = 0) -> int:
    """``fields[key]`` (an int or a digit string, numbered from ``first``) as a 0-based index below ``count``."""
    value: Any = require_field(fields, key, where)
    text = str(value).strip() if isinstance(value, (int, str)) and not isinstance(value, bool) else ""
    if not text.lstrip("-").isdigit():
        raise fail(where, f"field {key!r} must be a choice number, got {value!r}", "Test splits without answers cannot be scored.")
    index = int(text) - first
    if not 0 <= index < count:
        raise fail(where, f"field {key!r} is {value!r}, outside the {count} choices (numbered from {first})")
    return index
