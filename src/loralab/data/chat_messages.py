"""Validating a chat row's messages: roles, contents and turn order.

Three layouts: ``messages`` ([{role, content}]), ShareGPT's ``conversations`` ([{from: human | gpt |
system, value}]) and TRL's conversational prompt-completion (``prompt`` and ``completion``, each a list of
{role, content}). Errors name the message by its number and in the row's own words (``from 'gpt'``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from loralab.data.fields import fail
from loralab.data.records import ROLES, Message


@dataclass(frozen=True)
class Layout:
    """How a row writes a message: its role and content keys, and its name for each role."""

    role_key: str
    content_key: str
    names: dict[str, str]  # role → the row's word for it

    def name(self, role: str) -> str:
        return self.names.get(role, role)

    @property
    def order_rule(self) -> str:
        user, assistant, system = (self.name(role) for role in ("user", "assistant", "system"))
        return (f"After an optional first {system} message, turns alternate {user}, {assistant}, {user}, ... "
                f"and end with {assistant}.")  # fmt: skip


MESSAGES = Layout("role", "content", {role: role for role in ROLES})
SHAREGPT = Layout("from", "value", {"user": "human", "assistant": "gpt", "system": "system"})
ORDER_RULE = MESSAGES.order_rule


def parse_messages(value: Any, where: str, layout: Layout = MESSAGES) -> tuple[Message, ...]:
    """The validated conversation; DataError naming the message and the rule it breaks."""
    field = "messages" if layout is MESSAGES else "conversations"
    if not isinstance(value, list) or not value:
        shape = f'{{"{layout.role_key}", "{layout.content_key}"}}'
        raise fail(where, f"{field!r} must be a non-empty list of {shape} objects")
    messages = tuple(_parse_message(item, number, where, layout) for number, item in enumerate(value, start=1))
    _check_order(messages, where, layout)
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


def parse_prompt_completion(prompt: Any, completion: Any, where: str) -> tuple[Message, ...]:
    """TRL's conversational prompt-completion: the prompt (ending with a user message), then the completion's
    assistant turns; the whole conversation obeys the usual turn order."""
    context = parse_prompt_messages(prompt, f"{where}: field 'prompt'")
    if not isinstance(completion, list) or not completion:
        raise fail(where, "field 'completion' must be a non-empty list of {\"role\", \"content\"} objects")
    answer = tuple(_parse_message(item, number, f"{where}: field 'completion'") for number, item in enumerate(completion, start=1))
    if answer[0].role != "assistant":
        raise fail(f"{where}: field 'completion'", f"message 1 has role {answer[0].role!r}; a completion starts with "
                   "the assistant's answer")  # fmt: skip
    messages = context + answer
    _check_order(messages, where)
    return messages


def _parse_message(item: Any, number: int, where: str, layout: Layout = MESSAGES) -> Message:
    role_key, content_key = layout.role_key, layout.content_key
    if not isinstance(item, dict):
        raise fail(where, f"message {number} must be an object with {role_key!r} and {content_key!r}, got {type(item).__name__}")
    for key in (role_key, content_key):
        if key not in item:
            raise fail(where, f"message {number} has no {key!r} field")
    word, content = item[role_key], item[content_key]
    role = next((role for role, name in layout.names.items() if name == word), None)
    if role is None:
        raise fail(where, f"message {number} has {role_key} {word!r}", f"Use one of {', '.join(layout.names.values())}.")
    if not isinstance(content, str):
        raise fail(where, f"message {number} ({word}) {content_key} must be a string, got {type(content).__name__}")
    if role != "system" and not content.strip():
        raise fail(where, f"message {number} ({word}) has empty {content_key}")
    return Message(role, content)


def _check_order(messages: tuple[Message, ...], where: str, layout: Layout = MESSAGES) -> None:
    turns = messages[1:] if messages[0].role == "system" else messages
    offset = len(messages) - len(turns)
    rule, key = layout.order_rule, layout.role_key
    for index, message in enumerate(turns):
        expected = "user" if index % 2 == 0 else "assistant"
        if message.role != expected:
            number = index + offset + 1
            found, wanted = layout.name(message.role), layout.name(expected)
            raise fail(where, f"message {number} has {key} {found!r} where {wanted!r} was expected", rule)
    if not any(message.role == "assistant" for message in turns):
        raise fail(where, f"the conversation has no {layout.name('assistant')} turn, so there is nothing to train on", rule)
    if turns[-1].role != "assistant":
        raise fail(where, f"the conversation ends with a {layout.name('user')} turn that has no {layout.name('assistant')} reply", rule)
