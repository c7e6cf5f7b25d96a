"""Training records: what one row of a data file becomes once validated.

Three formats exist; a file holds only one of them:

* :class:`InstructionRecord` — a prompt and the response to learn (also Alpaca rows).
* :class:`ChatRecord` — a conversation; every assistant turn is learned.
* :class:`TextRecord` — raw text for continued pretraining (packed into blocks).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

ROLES = ("system", "user", "assistant")
IGNORE_INDEX = -100  # label of a token that is context, not trained (PyTorch cross-entropy default)


@dataclass(frozen=True)
class Message:
    """One chat turn: ``role`` is ``system``, ``user`` or ``assistant``."""

    role: str
    content: str

    def as_dict(self) -> dict[str, str]:
        """The ``{"role", "content"}`` mapping that chat templates expect."""
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True)
class InstructionRecord:
    """A single-turn example: the model sees ``prompt`` and learns ``response``."""

    prompt: str
    response: str


@dataclass(frozen=True)
class ChatRecord:
    """A conversation: optional system turn, then user/assistant turns, ending with the assistant."""

    messages: tuple[Message, ...]


@dataclass(frozen=True)
class TextRecord:
    """One document of raw text for continued pretraining."""

    text: str


Record = Union[InstructionRecord, ChatRecord, TextRecord]


@dataclass
class TokenizedExample:
    """One training sequence: ``input_ids`` and ``labels`` have the same length (seq,).

    ``labels[i]`` is ``input_ids[i]`` where the token is trained and -100 where it
    is only context (prompt, system and user turns, template markers).
    """

    input_ids: list[int]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.input_ids)
