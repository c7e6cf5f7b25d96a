"""Source-domain text: perplexity (``source-ppl``, ``ppl:F``) and KL to the base (``source-kl``, ``kl:F``).

Items are documents: held-out ``source-text`` passages, or the paragraphs (separated by
blank lines) of a text file. Windows as in :mod:`loralab.eval.perplexity`. Lower is better for both.
"""

from __future__ import annotations

from typing import Any

from loralab.eval.kl import kl_to_base
from loralab.eval.options import EvalOptions
from loralab.eval.perplexity import perplexity
from loralab.eval.result import TaskResult
from loralab.eval.tasks.spec import TaskSpec


def run_perplexity(model: Any, tokenizer: Any, spec: TaskSpec, documents: list[str], options: EvalOptions) -> list[TaskResult]:
    result = perplexity(model, tokenizer, documents, window=options.window, batch_size=options.score_batch_size)
    details = {"nll": result.nll, "tokens": result.tokens, "documents": len(documents), "window": options.window}
    return [TaskResult(spec.name, "perplexity", result.perplexity, result.stderr, result.tokens, 0.0, "source", False, details)]


def run_kl(model: Any, tokenizer: Any, spec: TaskSpec, documents: list[str], options: EvalOptions,
           reference: Any = None) -> list[TaskResult]:  # fmt: skip
    result = kl_to_base(model, tokenizer, documents, window=options.window, batch_size=options.score_batch_size, reference=reference)
    details = {"documents": len(documents), "window": options.window, "unit": "nats/token"}
    return [TaskResult(spec.name, "kl_to_base", result.kl, result.stderr, result.tokens, 0.0, "source", False, details)]
