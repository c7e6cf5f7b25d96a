"""Validating a chat row's ``messages`` list: roles, contents and turn order."""

from __future__ import annotations

from typing import Any

from loralab.data.fields import fail
from loralab.data.records import ROLES, Message

ORDER_RULE = "After an optional first system message, turns alternate user, assistant, user, ... and end with assistant."


def parse_messages(value: Any, where: str) -> tuple[Message, ...]:
    """The validated conversation; DataError naming the message and the rule it breaks."""
    if not isinstance(value, list) or not value:
        raise fail(where, "'messages' must be a non-empty list of {\"role\", \"content\"} objects")
    messages = tuple(_parse_message(item, number, where) for number, item in enumerate(value, start=1))
    _check_order(messages, where)
    return messages


def parse_prompt_messages(value: Any, where: str) -> tuple[Message, ...]:
    """A conversation for the model to answer: the same message checks, ending with a user message."""
    if not isinstance(value, list) or not value:
        raise fail(where, "the list of messages is empty")
    messages = tuple(_parse_message(item, number, where) for number, item in enumerate(value, start=1))
    if messages[-1].role != "user":
        raise fail(where, f"the last message is {messages[-1].role!r}; the model answers a conversation that ends "
                          "with a user message")  # fmt: skip
    return messages


def _parse_message(item: Any, number: int, where: str) -> Message:
    if not isinstance(item, dict):
        raise fail(where, f"message {number} must be an object with 'role' and 'content', got {type(item).__name__}")
    for key in ("role", "content"):
        if key not in item:
            raise fail(where, f"message {number} has no {key!r} field")
    role, content = item["role"], item["content"]
    if role not in ROLES:
        raise fail(where, f"message {number} has role {role!r}", f"Use one of {', '.join(ROLES)}.")
    if not isinstance(content, str):
        raise fail(where, f"message {number} ({role}) content must be a string, got {type(content).__name__}")
    if role != "system" and not content.strip():
        raise fail(where, f"message {number} ({role}) has empty content")
    return Message(role, content)


def _check_order(messages: tuple[Message, ...], where: str) -> None:
    turns = messages[1:] if messages[0].role == "system" else messages
    offset = len(messages) - len(turns)
    for index, message in enumerate(turns):
        expected = "user" if index % 2 == 0 else "assistant"
        if message.role != expected:
            number = index + offset + 1
            raise fail(where, f"message {number} has role {message.role!r} where {expected!r} was expected", ORDER_RULE)
    if not any(message.role == "assistant" for message in turns):
        raise fail(where, "the conversation has no assistant turn, so there is nothing to train on", ORDER_RULE)
    if turns[-1].role != "assistant":
        raise fail(where, "the conversation ends with a user turn that has no assistant reply", ORDER_RULE)
