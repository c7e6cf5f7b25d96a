"""What every built-in task offers."""

from __future__ import annotations

from typing import Any, Protocol

from loralab.data.records import Record


class Task(Protocol):
    """A built-in task: seeded, reproducible, disjoint train and test items.

    ``train(n, seed)`` and ``test(n, seed)`` return ``n`` items (the task's
    record type: MathProblem, CodeProblem or TextRecord); the same arguments
    always give the same items. ``to_record`` turns an item into a training
    record (InstructionRecord for instruction tasks, TextRecord for text,
    PreferenceRecord for preference tasks).
    """

    name: str
    description: str

    def train(self, n: int, seed: int = 0) -> list[Any]: ...

    def test(self, n: int, seed: int = 0) -> list[Any]: ...

    def to_record(self, item: Any) -> Record: ...
