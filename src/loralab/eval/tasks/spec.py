"""Task names: ``NAME`` for built-in tasks, ``KIND:PATH`` for a benchmark file.

Built-in: ``arith`` (word problems, exact match), ``pycode`` (functions, pass@k),
``arith-preference`` (held-out preference pairs: reward accuracy and margin),
``source-ppl`` (perplexity on held-out prose), ``source-kl`` (KL to the base model on it).
Files: ``gsm8k:F``, ``humaneval:F`` (target domain), ``pref:F`` (preference pairs),
``hellaswag:F``, ``arc:F``, ``winogrande:F`` (multiple choice), ``ppl:F`` and ``kl:F`` (any
UTF-8 text file).
Everything after the first colon is the path, so paths may contain colons.
"""

from __future__ import annotations

from dataclasses import dataclass

from loralab.errors import ConfigError

BUILTIN = ("arith", "pycode", "arith-preference", "source-ppl", "source-kl")
FILE_KINDS = ("gsm8k", "humaneval", "pref", "hellaswag", "arc", "winogrande", "ppl", "kl")


@dataclass(frozen=True)
class TaskSpec:
    """A parsed task name: ``kind`` (built-in name or file kind) and ``path`` (None for built-ins)."""

    kind: str
    path: str | None = None

    @property
    def name(self) -> str:
        return self.kind if self.path is None else f"{self.kind}:{self.path}"


def known_tasks() -> str:
    """The accepted task names, for error messages and help."""
    return ", ".join(BUILTIN) + "; files: " + ", ".join(f"{kind}:PATH" for kind in FILE_KINDS)


def parse_task(text: str) -> TaskSpec:
    """``"arith"`` -> TaskSpec("arith"); ``"gsm8k:test.jsonl"`` -> TaskSpec("gsm8k", "test.jsonl")."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"A task name must be a non-empty string, got {text!r}. Known tasks: {known_tasks()}.")
    kind, colon, path = text.strip().partition(":")
    if not colon:
        if kind in FILE_KINDS:
            raise ConfigError(f"Task {kind!r} reads a file: write it as {kind}:PATH.")
        if kind not in BUILTIN:
            raise ConfigError(f"Unknown task {text!r}. Known tasks: {known_tasks()}.")
        return TaskSpec(kind)
    if kind not in FILE_KINDS:
        raise ConfigError(f"Unknown task kind {kind!r} in {text!r}. Known tasks: {known_tasks()}.")
    if not path:
        raise ConfigError(f"Task {text!r} names no file: write it as {kind}:PATH.")
    return TaskSpec(kind, path)
