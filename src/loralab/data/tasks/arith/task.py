"""The ``arith`` task: seeded GSM8K-style word problems at three difficulty levels."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from loralab.data.problems import MathProblem
from loralab.data.records import InstructionRecord
from loralab.data.tasks.arith import level1, level2, level3
from loralab.data.tasks.arith.work import Worked
from loralab.data.tasks.split import sample_unique
from loralab.errors import DataError

LEVELS: dict[int, tuple[Callable[[random.Random], Worked], ...]] = {
    1: level1.TEMPLATES,
    2: level2.TEMPLATES,
    3: level3.TEMPLATES,
}


@dataclass(frozen=True)
class ArithTask:
    """Word problems with integer answers; ``level`` 1 is one step, 2 two steps, 3 three or more.

    Train and test are split by a hash of the question text (``test_percent``
    of all questions are test-only), so they never share a question.
    """

    level: int = 1
    test_percent: int = 20
    name: ClassVar[str] = "arith"
    description: ClassVar[str] = "GSM8K-style word problems (integer answers, '#### N' solutions)"

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise DataError(f"arith has no level {self.level!r}; choose one of {sorted(LEVELS)}.")

    def train(self, n: int, seed: int = 0) -> list[MathProblem]:
        """``n`` distinct training problems."""
        return self._sample(n, seed, "train")

    def test(self, n: int, seed: int = 0) -> list[MathProblem]:
        """``n`` distinct test problems, none of which can appear in any training set."""
        return self._sample(n, seed, "test")

    def to_record(self, problem: MathProblem) -> InstructionRecord:
        """Prompt: the question; response: the worked solution ending in ``#### N``."""
        return InstructionRecord(problem.question, problem.solution)

    def _sample(self, n: int, seed: int, split: str) -> list[MathProblem]:
        templates = LEVELS[self.level]

        def make(rng: random.Random) -> MathProblem:
            return rng.choice(templates)(rng).problem(self.level)

        return sample_unique(
            make,
            lambda problem: problem.question,
            n=n,
            split=split,
            seed=f"arith/level{self.level}/{seed}",
            test_percent=self.test_percent,
            what=f"level-{self.level} arith problems",
        )
