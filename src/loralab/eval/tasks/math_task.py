"""Exact match by generation (``arith``, ``gsm8k:F``): greedy answer, final integer compared.

The prompt is the question (chat template applied); generation stops at the end of turn or
after the line that gives ``#### N`` (:data:`ANSWER_LINE`). The answer is read from
the generated text by :func:`loralab.data.tasks.extract_answer` (``#### N``,
"answer is N", boxed, bold, else the last number). accuracy = correct / n,
stderr = sqrt(p (1 - p) / n). ``strict_accuracy`` counts only answers given in the
training format ``#### N`` (:func:`~loralab.data.tasks.arith.answers.extract_strict_answer`).
"""

from __future__ import annotations

from typing import Any

from loralab.data.problems import MathProblem
from loralab.data.tasks import extract_answer
from loralab.data.tasks.arith.answers import extract_strict_answer
from loralab.eval.generate import GenerationSettings, generate
from loralab.eval.options import EvalOptions
from loralab.eval.result import TaskResult
from loralab.eval.stats import proportion_stderr
from loralab.eval.tasks.progress import bar
from loralab.eval.tasks.spec import TaskSpec


#: generation of an answer ends with the line that gives ``#### N`` (the answer format of GSM8K and ``arith``)
ANSWER_LINE = r"####[^\n]*\d[^\n]*\n"


def score_answers(outputs: list[str], answers: list[int]) -> list[bool]:
    """Whether the integer extracted from each output equals its answer."""
    return [extract_answer(text) == answer for text, answer in zip(outputs, answers)]


def run_math(model: Any, tokenizer: Any, spec: TaskSpec, problems: list[MathProblem], options: EvalOptions) -> list[TaskResult]:
    settings = GenerationSettings(options.max_new_tokens, 0.0, 1.0, options.batch_size, seed=options.seed, stop_after=(ANSWER_LINE,))
    with bar(len(problems), f"{spec.name} generate", options.progress) as progress:
        outputs = generate(model, tokenizer, [p.question for p in problems], settings, progress.update)
    correct = score_answers(outputs, [p.answer for p in problems])
    accuracy = sum(correct) / len(correct)
    examples = [
        {"question": p.question, "output": o, "extracted": extract_answer(o), "answer": p.answer}
        for p, o in list(zip(problems, outputs))[:3]
    ]
    strict = [extract_strict_answer(o) == p.answer for p, o in zip(problems, outputs)]
    strict_accuracy = sum(strict) / len(strict)
    details = {"correct": sum(correct), "examples": examples}
    return [
        TaskResult(spec.name, "accuracy", accuracy, proportion_stderr(accuracy, len(correct)), len(correct), 0.0,
                   "target", True, details),
        TaskResult(spec.name, "strict_accuracy", strict_accuracy, proportion_stderr(strict_accuracy, len(strict)),
                   len(strict), 0.0, "target", True, {"correct": sum(strict), "format": "#### N"}),
    ]  # fmt: skip
