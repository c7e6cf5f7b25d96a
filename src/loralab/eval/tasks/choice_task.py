"""Multiple choice by log-likelihood (``hellaswag:F``, ``arc:F``, ``winogrande:F``): acc and acc_norm.

See :mod:`loralab.eval.multiple_choice` (acc_norm divides by the scored text's length in characters).
"""

from __future__ import annotations

from typing import Any

from loralab.data.problems import MultipleChoice
from loralab.eval.multiple_choice import predictions, score_choices
from loralab.eval.options import EvalOptions
from loralab.eval.result import TaskResult
from loralab.eval.stats import proportion_stderr
from loralab.eval.tasks.spec import TaskSpec


def run_choice(model: Any, tokenizer: Any, spec: TaskSpec, items: list[MultipleChoice], options: EvalOptions) -> list[TaskResult]:
    scores = score_choices(model, tokenizer, items, options.score_batch_size)
    results = []
    for metric, normalise in (("acc", False), ("acc_norm", True)):
        chosen = predictions(scores, normalise)
        accuracy = sum(c == item.label for c, item in zip(chosen, items)) / len(items)
        results.append(TaskResult(spec.name, metric, accuracy, proportion_stderr(accuracy, len(items)), len(items), 0.0,
                                  "source", True, {"normalised_by": "characters" if normalise else None}))  # fmt: skip
    return results
