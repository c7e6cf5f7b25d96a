"""Exact integer arithmetic that also writes the worked equation, e.g. ``"3 * 4 = 12"``."""

from __future__ import annotations

import operator
import random
from dataclasses import dataclass

from loralab.data.problems import MathProblem
from loralab.data.tasks.arith.vocab import NAMES, THINGS

OPERATIONS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.floordiv}


def calc(a: int, op: str, b: int) -> tuple[int, str]:
    """The result of ``a op b`` and its equation text; division must be exact."""
    if op == "/" and a % b:
        raise ValueError(f"{a} / {b} is not exact")
    result = OPERATIONS[op](a, b)
    return result, f"{a} {op} {b} = {result}"


@dataclass(frozen=True)
class Worked:
    """A problem as the templates write it: question, solution lines, final answer."""

    question: str
    lines: tuple[str, ...]
    answer: int

    def problem(self, level: int) -> MathProblem:
        """The MathProblem with the GSM8K ``#### <answer>`` last line."""
        solution = "\n".join([*self.lines, f"#### {self.answer}"])
        return MathProblem(self.question, solution, self.answer, level)


def two_names(rng: random.Random) -> tuple[str, str]:
    """Two different names."""
    first, second = rng.sample(NAMES, 2)
    return first, second


def thing(rng: random.Random) -> tuple[str, str]:
    """A (singular, plural) thing."""
    return rng.choice(THINGS)
