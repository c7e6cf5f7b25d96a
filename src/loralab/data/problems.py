"""Benchmark problems: one record type per kind of task, shared by built-in tasks and file readers."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MathProblem:
    """A word problem with an integer answer (GSM8K shape).

    ``solution`` is worked text whose last line is ``#### <answer>``.
    ``level`` is the built-in generator's difficulty (1-3), None for files.
    """

    question: str
    solution: str
    answer: int
    level: int | None = None


@dataclass(frozen=True)
class CodeProblem:
    """A function-writing problem (HumanEval shape).

    ``prompt`` is the signature and docstring; ``canonical_solution`` the body
    that completes it; ``test`` defines ``check(candidate)`` with asserts.
    """

    task_id: str
    prompt: str
    entry_point: str
    test: str
    canonical_solution: str


@dataclass(frozen=True)
class MultipleChoice:
    """A multiple-choice item scored by likelihood; ``label`` indexes ``choices``.

    Usually choice i is the continuation scored after ``context``. When
    ``suffix`` is set (WinoGrande), the choice fills a blank instead: the text
    scored is ``suffix`` after ``context + choices[i]``. :meth:`scoring_pairs`
    gives the (conditioning text, scored text) pairs for both cases.
    """

    context: str
    choices: tuple[str, ...]
    label: int
    suffix: str | None = None

    def scoring_pairs(self) -> list[tuple[str, str]]:
        """For each choice, the text to condition on and the text whose log-probability is compared."""
        if self.suffix is not None:
            return [(self.context + choice, self.suffix) for choice in self.choices]
        return [(self.context, _joined(self.context, choice)) for choice in self.choices]


def _joined(context: str, continuation: str) -> str:
    """The continuation with one separating space unless either side already has whitespace."""
    if not context or context[-1].isspace() or continuation[:1].isspace():
        return continuation
    return " " + continuation
