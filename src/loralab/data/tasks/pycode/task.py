"""The ``pycode`` task: seeded HumanEval-shaped function-writing problems from parameterised templates."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import ClassVar

from loralab.data.problems import CodeProblem
from loralab.data.records import InstructionRecord
from loralab.data.tasks.pycode import templates_lists, templates_numbers, templates_text
from loralab.data.tasks.pycode.spec import FunctionSpec
from loralab.data.tasks.split import sample_unique

TEMPLATES = templates_numbers.TEMPLATES + templates_lists.TEMPLATES + templates_text.TEMPLATES
INSTRUCTION = "Complete this Python function. Reply with the whole function in a ```python code block."


@dataclass(frozen=True)
class PyCodeTask:
    """Small function-writing problems (HumanEval shape) from 21 templates.

    A problem is identified by its template and parameters; that key alone
    decides whether it is a train or a test problem (``test_percent`` of keys
    are test-only), so a test function is never seen in training, whatever
    the examples shown in its docstring.
    """

    test_percent: int = 20
    name: ClassVar[str] = "pycode"
    description: ClassVar[str] = "HumanEval-style Python function problems with hidden check() tests"

    def train(self, n: int, seed: int = 0) -> list[CodeProblem]:
        """``n`` distinct training problems."""
        return self._sample(n, seed, "train")

    def test(self, n: int, seed: int = 0) -> list[CodeProblem]:
        """``n`` distinct test problems."""
        return self._sample(n, seed, "test")

    def to_record(self, problem: CodeProblem) -> InstructionRecord:
        """Prompt: instruction and the prompt code; response: the complete function in a code block."""
        signature = problem.prompt[problem.prompt.index(f"def {problem.entry_point}") :].split("\n", 1)[0]
        prompt = f"{INSTRUCTION}\n\n```python\n{problem.prompt}```"
        response = f"```python\n{signature}\n{problem.canonical_solution}```"
        return InstructionRecord(prompt, response)

    def _sample(self, n: int, seed: int, split: str) -> list[CodeProblem]:
        def make(rng: random.Random) -> FunctionSpec:
            return rng.choice(TEMPLATES)(rng)

        specs = sample_unique(
            make,
            lambda spec: spec.key,
            n=n,
            split=split,
            seed=f"pycode/{seed}",
            test_percent=self.test_percent,
            what="pycode problems",
            tries_per_item=400,
        )
        return [spec.render() for spec in specs]
