"""Recognising a row's format from its keys and turning it into a validated record.

=============  ======================================  ======================
format         keys                                    record
=============  ======================================  ======================
chat           ``messages`` [{role, content}, ...]     :class:`ChatRecord`
alpaca         ``instruction``, ``input`` (optional),  :class:`InstructionRecord`
               ``output``
instruction    ``prompt``, ``response``                :class:`InstructionRecord`
text           ``text``                                :class:`TextRecord`
=============  ======================================  ======================

A row is given the first format in this table that any of its marker keys
names (``messages``; ``instruction``/``output``; ``prompt``/``response``;
``text``). Other keys are ignored. Alpaca rows become prompt
``instruction + "\\n\\n" + input`` (just ``instruction`` when input is empty).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from loralab.data.chat_messages import parse_messages
from loralab.data.fields import fail, optional_text, require_field, require_text
from loralab.data.records import ChatRecord, InstructionRecord, Record, TextRecord

MARKERS: dict[str, tuple[str, ...]] = {
    "chat": ("messages",),
    "alpaca": ("instruction", "output"),
    "instruction": ("prompt", "response"),
    "text": ("text",),
}


def detect_format(fields: Mapping[str, Any], where: str) -> str:
    """The format name of a row; DataError listing the accepted key sets if none fits."""
    for name, markers in MARKERS.items():
        if any(key in fields for key in markers):
            return name
    present = ", ".join(repr(key) for key in fields) or "no fields"
    accepted = "; ".join(f"{name}: {', '.join(keys)}" for name, keys in MARKERS.items())
    raise fail(where, f"no known format for a row with {present}", f"Accepted key sets: {accepted}.")


def parse_row(fields: Mapping[str, Any], where: str) -> tuple[str, Record]:
    """The row's format name and its validated record."""
    name = detect_format(fields, where)
    if name == "chat":
        return name, ChatRecord(parse_messages(require_field(fields, "messages", where), where))
    if name == "alpaca":
        instruction = require_text(fields, "instruction", where)
        extra = optional_text(fields, "input", where)
        output = require_text(fields, "output", where)
        prompt = f"{instruction}\n\n{extra}" if extra.strip() else instruction
        return name, InstructionRecord(prompt, output)
    if name == "instruction":
        return name, InstructionRecord(require_text(fields, "prompt", where), require_text(fields, "response", where))
    return name, TextRecord(require_text(fields, "text", where))


def format_of(record: Record) -> str:
    """The format name of an already-built record (alpaca rows count as instruction)."""
    if isinstance(record, ChatRecord):
        return "chat"
    if isinstance(record, InstructionRecord):
        return "instruction"
    return "text"
