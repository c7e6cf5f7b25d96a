"""Checked access to the fields of one data row, with errors that name the row."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from loralab.errors import DataError


def fail(where: str, problem: str, fix: str = "") -> DataError:
    """A DataError reading ``<where>: <problem>. <fix>``."""
    message = f"{where}: {problem}"
    return DataError(f"{message}. {fix}" if fix else message)


def require_field(row: Mapping[str, Any], key: str, where: str) -> Any:
    """``row[key]``; error if the key is missing or its value is null."""
    if key in row and row[key] is None:
        raise fail(where, f"field {key!r} is null", f"Give {key!r} a value or remove the row.")
    if key not in row:
        present = ", ".join(repr(k) for k in row) or "none"
        raise fail(where, f"missing field {key!r} (fields present: {present})", f"Add {key!r} to this row.")
    return row[key]


def require_text(row: Mapping[str, Any], key: str, where: str, *, allow_empty: bool = False) -> str:
    """``row[key]`` as a string; error if missing, not a string, or blank (unless allowed)."""
    value = require_field(row, key, where)
    if not isinstance(value, str):
        raise fail(where, f"field {key!r} must be a string, got {type(value).__name__} {_short(value)}")
    if not allow_empty and not value.strip():
        raise fail(where, f"field {key!r} is empty", "Fill it in or remove the row.")
    return value


def optional_text(row: Mapping[str, Any], key: str, where: str) -> str:
    """``row[key]`` as a string, ``""`` when absent or null; error if present with another type."""
    if row.get(key) is None:
        return ""
    return require_text(row, key, where, allow_empty=True)


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
