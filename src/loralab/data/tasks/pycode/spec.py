"""A generated function-writing problem before rendering, and its rendering in HumanEval's shape."""

from __future__ import annotations

import copy
import hashlib
import random
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from loralab.data.problems import CodeProblem


@dataclass(frozen=True)
class FunctionSpec:
    """One problem as a template builds it.

    ``key`` identifies the problem (template name and parameters) and decides
    its train/test side. ``body`` is the canonical solution source (indented
    4 spaces); ``reference`` is a separate Python implementation used to
    compute the expected outputs of ``cases`` (tuples of arguments), so the
    canonical body is checked against an independent answer.
    """

    key: str
    name: str
    signature: str
    summary: str
    body: str
    reference: Callable[..., Any]
    cases: tuple[tuple[Any, ...], ...]

    def render(self) -> CodeProblem:
        """The CodeProblem: prompt with a doctest example (the first case), check() over all cases."""
        example = self.cases[0]
        doc = textwrap.fill(self.summary, width=84, initial_indent='    """', subsequent_indent="    ")
        prompt = (
            f"def {self.name}{self.signature}:\n"
            f"{doc}\n"
            f"    >>> {self.name}({_arguments(example)})\n"
            f"    {self.expected(example)!r}\n"
            f'    """\n'
        )
        asserts = "".join(f"    assert candidate({_arguments(case)}) == {self.expected(case)!r}\n" for case in self.cases)
        task_id = f"PyCode/{self.key.split(':')[0]}/{hashlib.sha256(self.key.encode()).hexdigest()[:8]}"
        return CodeProblem(task_id, prompt, self.name, f"def check(candidate):\n{asserts}", self.body)

    def expected(self, case: tuple[Any, ...]) -> Any:
        """The reference output for one case (on copies, so mutation cannot leak)."""
        return self.reference(*copy.deepcopy(case))


def case_rng(key: str) -> random.Random:
    """The random stream for a problem's test cases, fixed by its key."""
    return random.Random(f"pycode-cases/{key}")


def _arguments(case: tuple[Any, ...]) -> str:
    return ", ".join(repr(argument) for argument in case)
