"""HumanEval: ``{"task_id", "prompt", "canonical_solution", "test", "entry_point"}``."""

from __future__ import annotations

from os import PathLike

from loralab.data.benchmarks.rows import benchmark_rows
from loralab.data.fields import fail, require_text
from loralab.data.problems import CodeProblem


def read_humaneval(path: str | PathLike) -> list[CodeProblem]:
    """HumanEval-format problems (also those of ``pycode`` written to JSONL)."""
    return [parse_humaneval(row.fields, row.where) for row in benchmark_rows(path, "HumanEval")]


def parse_humaneval(fields: dict, where: str) -> CodeProblem:
    """One row; the test must define ``check`` and the prompt must define the entry point."""
    values = {key: require_text(fields, key, where) for key in CodeProblem.__dataclass_fields__}
    problem = CodeProblem(**values)
    if "def check(" not in problem.test:
        raise fail(where, "the 'test' field does not define check(candidate)")
    if f"def {problem.entry_point}" not in problem.prompt:
        raise fail(where, f"the prompt does not define the entry point {problem.entry_point!r}")
    return problem
