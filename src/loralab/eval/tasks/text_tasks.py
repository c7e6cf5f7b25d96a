"""Source-domain text: perplexity (``source-ppl``, ``ppl:F``) and KL to the base (``source-kl``, ``kl:F``).

Items are documents: held-out ``source-text`` passages, or the paragraphs (separated by
blank lines) of a text file. Windows as in :mod:`loralab.eval.perplexity`. Lower is better for both.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from loralab.eval.kl import kl_to_base
from loralab.eval.options import EvalOptions
from loralab.eval.perplexity import perplexity
from loralab.eval.result import TaskResult
from loralab.eval.tasks.spec import TaskSpec


def run_perplexity(model: Any, tokenizer: Any, spec: TaskSpec, documents: list[str], options: EvalOptions) -> list[TaskResult]:
    result = perplexity(model, tokenizer, documents, window=options.window, batch_size=options.score_batch_size)
    return [_perplexity_result(spec.name, result, documents, options)]


def run_kl(model: Any, tokenizer: Any, spec: TaskSpec, documents: list[str], options: EvalOptions,
           reference: Any = None, perplexity_task: str | None = None) -> list[TaskResult]:  # fmt: skip
    """KL to the base; with ``perplexity_task`` (the name of a perplexity task on the same documents)
    that task's result too, from the same forward passes, and the base's result for it in the KL
    result's ``details["base_perplexity"]`` (the fields of a TaskResult)."""
    result = kl_to_base(model, tokenizer, documents, window=options.window, batch_size=options.score_batch_size,
                        reference=reference, with_perplexity=perplexity_task is not None)  # fmt: skip
    details = {"documents": len(documents), "window": options.window, "unit": "nats/token"}
    kl = TaskResult(spec.name, "kl_to_base", result.kl, result.stderr, result.tokens, 0.0, "source", False, details)
    if perplexity_task is None:
        return [kl]
    details["base_perplexity"] = asdict(_perplexity_result(perplexity_task, result.base_perplexity, documents, options))
    return [kl, _perplexity_result(perplexity_task, result.perplexity, documents, options)]


def _perplexity_result(name: str, result: Any, documents: list[str], options: EvalOptions) -> TaskResult:
    details = {"nll": result.nll, "tokens": result.tokens, "documents": len(documents), "window": options.window}
    return TaskResult(name, "perplexity", result.perplexity, result.stderr, result.tokens, 0.0, "source", False, details)
