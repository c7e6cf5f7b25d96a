"""Perplexity on held-out text (source domain): how much of the original language modelling is kept.

Each document is tokenized without special tokens and cut into
non-overlapping windows of ``window`` tokens; within a window every token but
the first is predicted from the tokens before it in the window. With N the
number of predicted tokens over all documents,

    NLL = -(1/N) * sum_t log p(x_t | window prefix),    perplexity = exp(NLL)

(token-weighted, so long documents weigh more). The standard error is the
delta-method one, ppl * std(per-token NLL) / sqrt(N), treating tokens as
independent (an underestimate for correlated text).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from loralab.errors import DataError
from loralab.eval.scoring import token_logprobs, windows


@dataclass(frozen=True)
class Perplexity:
    """Token-weighted mean negative log-likelihood (nats), its perplexity and standard error."""

    nll: float
    perplexity: float
    stderr: float
    tokens: int


def document_windows(tokenizer: Any, documents: Sequence[str], window: int) -> list[list[int]]:
    """All windows of all documents, tokenized without special tokens."""
    rows: list[list[int]] = []
    for text in documents:
        rows.extend(windows(tokenizer(text, add_special_tokens=False)["input_ids"], window))
    return rows


def perplexity(model: Any, tokenizer: Any, documents: Sequence[str], *, window: int = 256, batch_size: int = 4) -> Perplexity:
    """Perplexity of ``model`` on ``documents`` (see the module docstring for the definition)."""
    rows = [row for row in document_windows(tokenizer, documents, window) if len(row) >= 2]
    if not rows:
        raise DataError("No text to score: the documents are empty or shorter than two tokens.")
    return perplexity_of(-torch.cat(token_logprobs(model, rows, [1] * len(rows), batch_size)))


def perplexity_of(nll: torch.Tensor) -> Perplexity:
    """Perplexity and its standard error from the per-token negative log-likelihoods (nats)."""
    if not len(nll):
        raise DataError("No text to score: the documents are empty or shorter than two tokens.")
    mean = float(nll.mean())
    spread = float(nll.std()) if len(nll) > 1 else 0.0
    ppl = math.exp(mean)
    return Perplexity(mean, ppl, ppl * spread / math.sqrt(len(nll)), len(nll))
