"""Rendering instruction and chat records to text segments marked trained or context.

The split comes from the tokenizer's own chat template, not from hard-coded
markers: for each assistant turn, the conversation before it is rendered with
``add_generation_prompt=True``; that text must be a prefix of the rendered
full conversation, and what follows it — the assistant content and its
end-of-turn token — is the trained segment. The end-of-turn token is the first
special token after the content and before the next message's content;
anything the template writes after it (a newline, the next turn) is context.

Without a chat template, an instruction renders as ``prompt + "\\n"`` (context)
followed by ``response + eos`` (trained).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from loralab.data.records import ChatRecord, CompletionRecord, InstructionRecord, Message
from loralab.errors import DataError


@dataclass(frozen=True)
class Segment:
    """A piece of rendered text; ``trained`` marks assistant content and its end-of-turn token."""

    text: str
    trained: bool


def record_segments(tokenizer: Any, record: InstructionRecord | CompletionRecord | ChatRecord, where: str) -> list[Segment]:
    """The record rendered as consecutive segments whose texts join into the full training text."""
    if isinstance(record, ChatRecord):
        return chat_segments(tokenizer, record.messages, where, record.prompt_messages)
    if isinstance(record, CompletionRecord):  # TRL's standard prompt-completion: no template, as TRL renders it
        return [Segment(record.prompt, False), Segment(record.completion + (tokenizer.eos_token or ""), True)]
    if has_chat_template(tokenizer):
        return chat_segments(tokenizer, instruction_messages(record), where)
    return [Segment(plain_prompt(record.prompt), False), Segment(record.response + (tokenizer.eos_token or ""), True)]


def instruction_messages(record: InstructionRecord) -> tuple[Message, ...]:
    """An instruction as a one-exchange conversation."""
    return (Message("user", record.prompt), Message("assistant", record.response))


def generation_prompt(tokenizer: Any, prompt: str) -> str:
    """The text a model is given at inference for ``prompt``, rendered exactly as in training."""
    if has_chat_template(tokenizer):
        return _render(tokenizer, [Message("user", prompt)], True, "prompt")
    return plain_prompt(prompt)


def plain_prompt(prompt: str) -> str:
    """The prompt text used when the tokenizer has no chat template."""
    return prompt + "\n"


def has_chat_template(tokenizer: Any) -> bool:
    """Whether the tokenizer carries a chat template."""
    return bool(getattr(tokenizer, "chat_template", None))


def chat_segments(tokenizer: Any, messages: Sequence[Message], where: str, prompt_messages: int = 0) -> list[Segment]:
    """Segments of a validated conversation; every assistant turn from message ``prompt_messages`` on is trained."""
    if not has_chat_template(tokenizer):
        raise DataError(f"{where}: chat data needs a tokenizer with a chat template, and this tokenizer has none.")
    full = _render(tokenizer, messages, False, where)
    specials = _special_strings(tokenizer)
    segments: list[Segment] = []
    cursor = 0
    for index, message in enumerate(messages):
        if message.role != "assistant" or index < prompt_messages:
            continue
        start = len(_checked_prefix(tokenizer, messages, index, full, cursor, where))
        content_end = _content_end(full, start, message.content, where, index)
        bound = _next_content_start(full, content_end, messages[index + 1 :])
        end = _end_of_turn(full, content_end, bound, specials)
        segments += [Segment(full[cursor:start], False), Segment(full[start:end], True)]
        cursor = end
    segments.append(Segment(full[cursor:], False))
    return [segment for segment in segments if segment.text]


def _render(tokenizer: Any, messages: Sequence[Message], generation: bool, where: str) -> str:
    try:
        text = tokenizer.apply_chat_template(
            [message.as_dict() for message in messages], tokenize=False, add_generation_prompt=generation
        )
    except Exception as error:  # jinja raises TemplateError or anything the template itself raises
        raise DataError(f"{where}: the tokenizer's chat template rejected this conversation ({error}).") from None
    if not isinstance(text, str):
        raise DataError(f"{where}: the chat template returned {type(text).__name__}, not text.")
    return text


def _checked_prefix(tokenizer: Any, messages: Sequence[Message], index: int, full: str, cursor: int, where: str) -> str:
    prefix = _render(tokenizer, messages[:index], True, where)
    if not full.startswith(prefix) or len(prefix) < cursor:
        raise DataError(
            f"{where}: the chat template renders the conversation before message {index + 1} differently from "
            "the start of the full conversation, so the response tokens cannot be located. "
            "Use a tokenizer whose template renders turns incrementally, or train_on_prompt=True."
        )
    return prefix


def _content_end(full: str, start: int, content: str, where: str, index: int) -> int:
    for candidate in (content, content.strip()):
        position = full.find(candidate, start)
        if candidate and position >= 0:
            return position + len(candidate)
    raise DataError(f"{where}: the chat template does not reproduce the text of message {index + 1} (assistant).")


def _next_content_start(full: str, position: int, later: Sequence[Message]) -> int:
    for message in later:
        found = full.find(message.content.strip(), position) if message.content.strip() else -1
        if found >= 0:
            return found
    return len(full)


def _end_of_turn(full: str, content_end: int, bound: int, specials: tuple[str, ...]) -> int:
    hits = [(full.find(token, content_end, bound), token) for token in specials]
    hits = [(position, token) for position, token in hits if position >= 0]
    if not hits:
        return content_end
    position, token = min(hits, key=lambda hit: (hit[0], -len(hit[1])))
    return position + len(token)


def _special_strings(tokenizer: Any) -> tuple[str, ...]:
    names = set(getattr(tokenizer, "all_special_tokens", []) or [])
    for added in (getattr(tokenizer, "added_tokens_decoder", {}) or {}).values():
        if getattr(added, "special", False):
            names.add(str(added.content))
    return tuple(sorted(name for name in names if name))
