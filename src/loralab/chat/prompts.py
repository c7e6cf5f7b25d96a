"""``loralab generate``: prompts in, JSONL completions out.

A prompts file holds one JSON object per line (``.jsonl``; the other data formats loralab reads
work too, see :func:`loralab.data.readers.read_rows`), each with ``"prompt"`` (a string, or a list
of messages as TRL writes conversational prompts) or ``"messages"`` (a list of ``{"role",
"content"}`` ending with a user turn). Every line is checked, and a mistake is reported with its
line number, before any model loads (:func:`read_prompts`).

Each record is rendered with the tokenizer's chat template (``raw``: the prompt text itself, as
given), generated in batches by :func:`loralab.eval.generate.generate` (the same decoding as
evaluation: greedy at temperature 0, tested against transformers' ``generate``) and written back
as the input record plus ``"completion"`` (:func:`completion_lines`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from loralab.chat.render import conversation_prompt
from loralab.data.chat_messages import parse_prompt_messages
from loralab.data.fields import fail
from loralab.data.render import has_chat_template
from loralab.errors import DataError
from loralab.eval.generate import GenerationSettings, generate


@dataclass(frozen=True)
class PromptRecord:
    """One prompt: the ``fields`` as read (written back with the completion), where it came from,
    and the conversation to continue (``text``: a plain prompt; ``messages``: a conversation)."""

    fields: dict[str, Any]
    where: str
    text: str | None = None
    messages: tuple[dict[str, str], ...] | None = None

    def render(self, tokenizer: Any, raw: bool) -> str:
        """The text the model continues (the chat template unless ``raw``)."""
        if self.messages is not None:
            if raw:  # refused when read; kept here for records built in code
                raise DataError(f"{self.where}: --raw takes plain prompts, not messages")
            if not has_chat_template(tokenizer):
                raise DataError(f"{self.where}: a list of messages needs a tokenizer with a chat template, and this "
                                "tokenizer has none; give a plain \"prompt\" instead")  # fmt: skip
            return conversation_prompt(tokenizer, self.messages, self.where)
        assert self.text is not None
        return self.text if raw else conversation_prompt(tokenizer, [{"role": "user", "content": self.text}], self.where)


def prompt_record(fields: dict[str, Any], where: str, raw: bool = False) -> PromptRecord:
    """A checked :class:`PromptRecord` from one JSON object; DataError naming ``where`` otherwise."""
    has_prompt, has_messages = "prompt" in fields, "messages" in fields
    if has_prompt == has_messages:
        present = ", ".join(repr(key) for key in fields) or "none"
        problem = "both 'prompt' and 'messages'" if has_prompt else f"neither 'prompt' nor 'messages' (fields present: {present})"
        raise fail(where, f"the line has {problem}", 'Give {"prompt": "..."} or {"messages": [{"role": "user", "content": "..."}]}.')
    key = "prompt" if has_prompt else "messages"
    value = fields[key]
    if isinstance(value, str):
        if key == "messages":
            raise fail(where, "'messages' must be a list of {\"role\", \"content\"} objects, got a string")
        if not value.strip():
            raise fail(where, "'prompt' is empty")
        return PromptRecord(fields, where, text=value)
    if not isinstance(value, list):
        raise fail(where, f"{key!r} must be a string or a list of messages, got {type(value).__name__}")
    if raw:
        raise fail(where, f"--raw takes plain text prompts, but {key!r} is a list of messages", "Drop --raw to use the chat template.")
    return PromptRecord(fields, where, messages=_checked_messages(value, where))


def _checked_messages(value: list, where: str) -> tuple[dict[str, str], ...]:
    return tuple({"role": m.role, "content": m.content} for m in parse_prompt_messages(value, where))


def read_prompts(path: str | Path, raw: bool = False) -> list[PromptRecord]:
    """Every prompt of a prompts file, checked; DataError with the file and line number of the first mistake."""
    from loralab.data.readers import read_rows

    path = Path(path)
    if not path.exists():
        raise DataError(f"prompts file {path} does not exist")
    records = [prompt_record(row.fields, row.where, raw) for row in read_rows(path)]
    if not records:
        raise DataError(f"{path} holds no prompts (one JSON object per line: {{\"prompt\": ...}} or {{\"messages\": [...]}})")
    return records


def generate_completions(model: Any, tokenizer: Any, records: Sequence[PromptRecord], settings: GenerationSettings,
                         raw: bool = False, on_batch: Callable[[int], None] | None = None) -> list[str]:  # fmt: skip
    """The completion of each record, in order (batched; ``on_batch(rows)`` as rows finish)."""
    texts = [record.render(tokenizer, raw) for record in records]  # every record rendered before any decoding
    return generate(model, tokenizer, texts, replace(settings, chat=False), on_batch=on_batch)  # rendered here already


def completion_lines(records: Sequence[PromptRecord], completions: Sequence[str]) -> str:
    """JSONL: each input record with its ``"completion"`` (an input ``completion`` field is replaced)."""
    return "".join(json.dumps({**record.fields, "completion": completion}, ensure_ascii=False) + "\n"
                   for record, completion in zip(records, completions))  # fmt: skip
