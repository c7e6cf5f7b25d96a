"""Training records: what one row of a data file becomes once validated.

Five kinds exist; a file holds only one of them:

* :class:`InstructionRecord` — a prompt and the response to learn (also Alpaca rows).
* :class:`CompletionRecord` — TRL's prompt-completion text: prompt and completion joined as they are.
* :class:`ChatRecord` — a conversation; every assistant turn is learned (also ShareGPT rows, and TRL's
  conversational prompt-completion rows, where only the completion's turns are).
* :class:`TextRecord` — raw text for continued pretraining (packed into blocks).
* :class:`PreferenceRecord` — a prompt and two answers, one preferred (DPO).
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
class CompletionRecord:
    """TRL's (standard) prompt-completion row: the text is ``prompt + completion + eos``, with no chat
    template; ``completion`` and the EOS token are learned."""

    prompt: str
    completion: str


@dataclass(frozen=True)
class ChatRecord:
    """A conversation: optional system turn, then user/assistant turns, ending with the assistant.

    The first ``prompt_messages`` messages are the prompt (TRL's conversational prompt-completion):
    assistant turns among them are context, not learned. 0: every assistant turn is learned.
    """

    messages: tuple[Message, ...]
    prompt_messages: int = 0


@dataclass(frozen=True)
class TextRecord:
    """One document of raw text for continued pretraining."""

    text: str


@dataclass(frozen=True)
class PreferenceRecord:
    """A prompt and two answers to it: ``chosen`` is preferred to ``rejected``.

    ``history`` holds the turns before the prompt (a system message, earlier user/assistant
    turns; empty for a single exchange). Each side is the conversation ``history + (user:
    prompt, assistant: answer)``, learned on the answer only.
    """

    prompt: str
    chosen: str
    rejected: str
    history: tuple[Message, ...] = ()

    def conversation(self, answer: str) -> tuple[Message, ...]:
        """The whole conversation ending with ``answer`` (``chosen`` or ``rejected``)."""
        return (*self.history, Message("user", self.prompt), Message("assistant", answer))

    def as_row(self) -> dict[str, object]:
        """The data-file row that parses back to this record (chat layout when there is a history)."""
        row: dict[str, object] = {"prompt": self.prompt, "chosen": self.chosen, "rejected": self.rejected}
        if len(self.history) == 1 and self.history[0].role == "system" and self.history[0].content.strip():
            row["system"] = self.history[0].content
        elif self.history:
            for side in ("chosen", "rejected"):
                row[side] = [message.as_dict() for message in self.conversation(getattr(self, side))]
        return row


Record = Union[InstructionRecord, CompletionRecord, ChatRecord, TextRecord, PreferenceRecord]


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
