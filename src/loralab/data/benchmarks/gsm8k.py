"""GSM8K: ``{"question", "answer"}`` where the answer's worked text ends with ``#### N``."""

from __future__ import annotations

import re
from os import PathLike

from loralab.data.benchmarks.rows import benchmark_rows
from loralab.data.fields import fail, require_text
from loralab.data.problems import MathProblem

CALCULATOR = re.compile(r"<<[^<>]*>>")
FINAL = re.compile(r"####\s*(?P<number>[-−]?[\d,]+(?:\.0+)?)\s*$")


def read_gsm8k(path: str | PathLike) -> list[MathProblem]:
    """GSM8K problems; calculator annotations ``<<48/2=24>>`` are removed from solutions."""
    return [parse_gsm8k(row.fields, row.where) for row in benchmark_rows(path, "GSM8K")]


def parse_gsm8k(fields: dict, where: str) -> MathProblem:
    """One GSM8K row; the final line of the solution is rewritten as ``#### <answer>`` without commas."""
    question = require_text(fields, "question", where)
    worked = CALCULATOR.sub("", require_text(fields, "answer", where)).rstrip()
    match = FINAL.search(worked)
    if match is None:
        raise fail(where, "the 'answer' field does not end with '#### <integer>'", "GSM8K answers end with e.g. '#### 42'.")
    digits = match.group("number").replace(",", "").replace("−", "-").split(".")[0]
    if not re.fullmatch(r"-?\d+", digits):
        raise fail(where, f"the final answer {match.group('number')!r} is not an integer")
    answer = int(digits)
    solution = f"{worked[: match.start()].rstrip()}\n#### {answer}".lstrip("\n")
    return MathProblem(question, solution, answer)
