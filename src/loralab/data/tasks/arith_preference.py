"""The ``arith-preference`` task: arith problems as DPO pairs, the worked solution over a wrong one.

Problems, splits and options are the ``arith`` task's (same level, seed → same problems). The
rejected answer repeats the correct solution except in its last step, where one mistake is made
and carried into the ``#### N`` line: a slip in the result (off by 1, 2 or 10) or the wrong
operation (+ and − swapped, × read as +, ÷ as ×). Which mistake is drawn from the question and
``mistake_seed``; the wrong answer is never the right one (nor negative).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import ClassVar

from loralab.data.problems import MathProblem
from loralab.data.records import PreferenceRecord
from loralab.data.tasks.arith import ArithTask
from loralab.data.tasks.arith.work import OPERATIONS

EQUATION = re.compile(r"(\d+) ([-+*/]) (\d+) = (\d+)")
WRONG_OPERATION = {"+": "-", "-": "+", "*": "+", "/": "*"}
SLIPS = (-10, -2, -1, 1, 2, 10)


@dataclass(frozen=True)
class ArithPreferenceTask:
    """``arith`` problems (``level``, ``test_percent`` as there); ``to_record`` gives a preference pair.

    ``test`` items are plain arith problems, scored by the arith accuracy evaluation.
    """

    level: int = 1
    test_percent: int = 20
    mistake_seed: int = 0
    name: ClassVar[str] = "arith-preference"
    description: ClassVar[str] = "arith word problems as preference pairs: worked solution vs. a wrong last step"

    def __post_init__(self) -> None:
        ArithTask(self.level, self.test_percent)  # an unknown level fails here, as it does for arith

    @property
    def arith(self) -> ArithTask:
        """The ``arith`` task whose problems these are."""
        return ArithTask(self.level, self.test_percent)

    def train(self, n: int, seed: int = 0) -> list[MathProblem]:
        """``n`` distinct training problems, those of ``arith`` with the same seed."""
        return self.arith.train(n, seed)

    def test(self, n: int, seed: int = 0) -> list[MathProblem]:
        """``n`` distinct test problems, those of ``arith`` with the same seed."""
        return self.arith.test(n, seed)

    def to_record(self, problem: MathProblem) -> PreferenceRecord:
        """Prompt and chosen as ``arith``'s record; rejected: :func:`wrong_solution`."""
        right = self.arith.to_record(problem)
        rng = random.Random(f"arith-preference/{self.mistake_seed}/{problem.question}")
        return PreferenceRecord(right.prompt, right.response, wrong_solution(problem, rng))


def wrong_solution(problem: MathProblem, rng: random.Random) -> str:
    """The solution with one mistake in its last equation, carried into the final ``#### N`` line."""
    *work, _ = problem.solution.split("\n")
    found = list(EQUATION.finditer(work[-1])) if work else []
    if not found:  # no worked equation to get wrong: only the final answer slips
        return "\n".join([*work, f"#### {_slip(problem.answer, rng)}"])
    last = found[-1]
    a, op, b = int(last[1]), last[2], int(last[3])
    if rng.random() < 0.5 and 0 <= (swapped := OPERATIONS[WRONG_OPERATION[op]](a, b)) != problem.answer:
        op, wrong = WRONG_OPERATION[op], swapped
    else:
        wrong = _slip(problem.answer, rng)
    line = work[-1][: last.start()] + f"{a} {op} {b} = {wrong}" + work[-1][last.end() :]
    return "\n".join([*work[:-1], line, f"#### {wrong}"])


def _slip(answer: int, rng: random.Random) -> int:
    return answer + rng.choice([slip for slip in SLIPS if answer + slip >= 0] or SLIPS)
