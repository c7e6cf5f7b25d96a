"""Recognising a row's format from its keys and turning it into a validated record.

=============  ======================================  ======================
format         keys                                    record
=============  ======================================  ======================
preference     ``chosen``, ``rejected``, ``prompt``,   :class:`PreferenceRecord`
               ``system`` (optional)
chat           ``messages`` [{role, content}, ...]     :class:`ChatRecord`
sharegpt       ``conversations`` [{from, value}, ...]  :class:`ChatRecord`
alpaca         ``instruction``, ``input`` (optional),  :class:`InstructionRecord`
               ``output``
completion     ``prompt``, ``completion`` (TRL)        :class:`CompletionRecord` (strings),
                                                       :class:`ChatRecord` (message lists)
instruction    ``prompt``, ``response``                :class:`InstructionRecord`
text           ``text``                                :class:`TextRecord`
=============  ======================================  ======================

A row is given the first format in this table that any of its marker keys
names (``chosen``/``rejected``; ``messages``; ``conversations``; ``instruction``/``output``;
``completion``; ``prompt``/``response``; ``text``). Other keys are ignored. Alpaca rows become prompt
``instruction + "\\n\\n" + input`` (just ``instruction`` when input is empty).

ShareGPT messages say ``from`` (``human``, ``gpt``, ``system``) and ``value``. TRL's prompt-completion
rows come in TRL's two layouts, both fields alike: strings (the text is ``prompt + completion + eos``
with no chat template, and ``completion`` + eos is learned, as TRL's SFT trainer does), or lists of
``{role, content}`` messages (conversational: the prompt ends with a user message, the completion
holds the assistant's answer; rendered with the chat template, and only the completion is learned).

Preference rows come in two layouts, both sides alike: strings (``prompt``, ``chosen``,
``rejected``, optional ``system``), or the UltraFeedback chat layout where ``chosen`` and
``rejected`` are whole conversations (``[{role, content}, ...]``, in CSV a JSON list in the
cell) that agree up to their last message, the assistant answer; there the conversation is
the prompt, and a ``prompt`` field, if present, need only be a string.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from loralab.data.chat_messages import SHAREGPT, parse_messages, parse_prompt_completion
from loralab.data.fields import fail, optional_text, require_field, require_text
from loralab.data.readers.row import check_values, too_deep
from loralab.data.records import (
    ChatRecord,
    CompletionRecord,
    InstructionRecord,
    Message,
    PreferenceRecord,
    Record,
    TextRecord,
)

#: a string that is a JSON list of chat messages (a CSV cell), not an answer
_MESSAGES_JSON = re.compile(r'\s*\[\s*\{\s*"(?:role|content)"')

MARKERS: dict[str, tuple[str, ...]] = {
    "preference": ("chosen", "rejected"),  # before chat: UltraFeedback rows also carry 'messages'
    "chat": ("messages",),
    "sharegpt": ("conversations",),
    "alpaca": ("instruction", "output"),
    "completion": ("completion",),  # before instruction: TRL rows also have 'prompt'
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
    if name == "preference":
        return name, parse_preference(fields, where)
    if name == "chat":
        return name, ChatRecord(parse_messages(require_field(fields, "messages", where), where))
    if name == "sharegpt":
        return name, ChatRecord(parse_messages(require_field(fields, "conversations", where), where, SHAREGPT))
    if name == "completion":
        return name, parse_completion(fields, where)
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
    """The format name of an already-built record (alpaca rows count as instruction, ShareGPT and
    conversational prompt-completion rows as chat)."""
    if isinstance(record, ChatRecord):
        return "chat"
    if isinstance(record, InstructionRecord):
        return "instruction"
    if isinstance(record, CompletionRecord):
        return "completion"
    if isinstance(record, PreferenceRecord):
        return "preference"
    return "text"


def parse_completion(fields: Mapping[str, Any], where: str) -> CompletionRecord | ChatRecord:
    """A TRL prompt-completion row in either layout (strings, or lists of messages) as a validated record."""
    prompt, completion = (_messages_cell(require_field(fields, key, where), key, where) for key in ("prompt", "completion"))
    if isinstance(prompt, str) and isinstance(completion, str):
        return CompletionRecord(require_text(fields, "prompt", where), require_text(fields, "completion", where))
    if isinstance(prompt, (list, tuple)) and isinstance(completion, (list, tuple)):
        context = parse_prompt_completion(list(prompt), list(completion), where)
        return ChatRecord(context, prompt_messages=len(prompt))
    kinds = {key: "a string" if isinstance(v, str) else "a list of messages" if isinstance(v, (list, tuple)) else type(v).__name__
             for key, v in (("prompt", prompt), ("completion", completion))}  # fmt: skip
    raise fail(where, f"'prompt' is {kinds['prompt']} but 'completion' is {kinds['completion']}",
               "Give both as strings (text) or both as lists of {role, content} messages (conversational).")  # fmt: skip


def parse_preference(fields: Mapping[str, Any], where: str) -> PreferenceRecord:
    """A preference row in either layout as a validated record; DataError naming the field otherwise."""
    chosen, rejected = _side(fields, "chosen", where), _side(fields, "rejected", where)
    if isinstance(chosen, str) != isinstance(rejected, str):
        layouts = f"'chosen' is {_layout(chosen)} but 'rejected' is {_layout(rejected)}"
        raise fail(where, layouts, "Give both sides as strings or both as lists of messages.")
    if isinstance(chosen, str) and isinstance(rejected, str):
        system = optional_text(fields, "system", where)
        history = (Message("system", system),) if system.strip() else ()
        record = PreferenceRecord(require_text(fields, "prompt", where), chosen, rejected, history)
    else:
        record = _chat_pair(fields, chosen, rejected, where)
    if record.chosen.strip() == record.rejected.strip():
        raise fail(where, "'chosen' and 'rejected' give the same answer", "A pair needs two different answers.")
    return record


def _side(fields: Mapping[str, Any], key: str, where: str) -> str | tuple[Message, ...]:
    """One side: its answer text (string layout) or its whole validated conversation (chat layout)."""
    value = require_field(fields, key, where)
    if isinstance(value, str):
        value = _messages_cell(value, key, where)
    if isinstance(value, str):
        return require_text(fields, key, where)
    if isinstance(value, (list, tuple)):
        if not value:
            raise fail(where, f"field {key!r} is an empty list", "Give the conversation, ending with the answer.")
        return parse_messages(list(value), f"{where}: field {key!r}")
    kind = type(value).__name__
    raise fail(where, f"field {key!r} must be a string or a list of {{role, content}} messages, got {kind}")


def _messages_cell(text: Any, key: str, where: str) -> Any:
    """A JSON list of messages written as text (a CSV cell) decoded; any other value as it is."""
    if not isinstance(text, str) or not _MESSAGES_JSON.match(text):
        return text
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        problem = f"field {key!r} looks like a JSON list of messages but is not valid JSON ({error.msg})"
        raise fail(where, problem) from None
    except RecursionError:
        raise too_deep(where) from None
    check_values({key: value}, where)  # as the CSV reader checks a decoded 'messages' cell
    return value


def _chat_pair(
    fields: Mapping[str, Any], chosen: tuple[Message, ...], rejected: tuple[Message, ...], where: str
) -> PreferenceRecord:
    """The record of a chat-layout row: the shared context, then the two final answers."""
    context = chosen[:-1]
    if rejected[:-1] != context:
        shared = min(len(chosen), len(rejected)) - 1
        number = next((i for i in range(shared) if chosen[i] != rejected[i]), shared) + 1
        raise fail(
            where,
            f"'chosen' and 'rejected' differ at message {number}, before their last message",
            "Both must hold the same conversation and differ only in the final assistant answer.",
        )
    optional_text(fields, "prompt", where)  # the conversation holds the prompt; the field is only type-checked
    if optional_text(fields, "system", where).strip():
        raise fail(where, "field 'system' is for string rows", "Put the system message first in both conversations.")
    return PreferenceRecord(context[-1].content, chosen[-1].content, rejected[-1].content, context[:-1])


def _layout(side: str | tuple[Message, ...]) -> str:
    return "a string" if isinstance(side, str) else "a list of messages"
