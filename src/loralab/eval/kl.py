"""KL divergence from the base model to the fine-tuned one on source-domain text (forgetting).

For every position t of every window (all positions: each gives a next-token
distribution), with p = base model (adapters disabled via
:func:`loralab.disabled`, same weights in memory; or a separate ``reference`` model, e.g.
the base of a full fine-tuning run) and q = fine-tuned model:

    KL_t = sum_v p_t(v) * (log p_t(v) - log q_t(v)),     reported: mean_t KL_t (nats per token)

log-softmax is computed in float32 (float64 took a fifth of the whole pass on a CPU, for a change
below 1e-6 nats per token) and the sum over the vocabulary is accumulated in float64. The
standard error is std(KL_t) / sqrt(number of positions). Windows as in
:mod:`loralab.eval.perplexity`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from loralab.errors import ConfigError, DataError
from loralab.eval.perplexity import Perplexity, document_windows, perplexity_of
from loralab.eval.scoring import batched_logits


@dataclass(frozen=True)
class Divergence:
    """Mean per-token KL(p_base || p_finetuned) in nats, its standard error, and the positions counted;
    with ``with_perplexity``, also the fine-tuned model's perplexity on the same windows (same forward passes)."""

    kl: float
    stderr: float
    tokens: int
    perplexity: Perplexity | None = None
    base_perplexity: Perplexity | None = None


def kl_to_base(model: Any, tokenizer: Any, documents: Sequence[str], *, window: int = 256, batch_size: int = 2,
               reference: Any = None, with_perplexity: bool = False) -> Divergence:  # fmt: skip
    """Mean per-token KL from the base model (adapters off, or ``reference``) to ``model`` on ``documents``.

    ``with_perplexity``: also :func:`~loralab.eval.perplexity.perplexity` of ``model`` and of the base from
    the same logits, which saves the forward passes that perplexity tasks on the same text would cost.
    """
    import contextlib

    import loralab

    if reference is None and not _has_adapters(model):
        raise ConfigError("KL to the base model needs a model with a LoRA adapter (load one with --adapter) "
                          "or a reference model (--reference MODEL, e.g. the base of a merged model).")
    base_model = model if reference is None else reference
    as_base = (lambda: loralab.disabled(model)) if reference is None else contextlib.nullcontext
    rows = [row for row in document_windows(tokenizer, documents, window) if row]
    if not rows:
        raise DataError("No text to score: the documents are empty.")
    values: list[torch.Tensor] = []
    nll: list[torch.Tensor] = []
    base_nll: list[torch.Tensor] = []
    for chunk, tuned in batched_logits(model, rows, batch_size):
        with as_base():
            order, base = next(batched_logits(base_model, [rows[i] for i in chunk], len(chunk)))
        base_row = {chunk[j]: position for position, j in enumerate(order)}
        for position, index in enumerate(chunk):
            length = len(rows[index])
            log_p = torch.log_softmax(base[base_row[index], :length].float(), dim=-1)
            log_q = torch.log_softmax(tuned[position, :length].float(), dim=-1)
            values.append((log_p.exp() * (log_p - log_q)).sum(-1, dtype=torch.float64))  # on the device: read once, below
            if with_perplexity and length >= 2:
                targets = torch.tensor(rows[index][1:]).to(log_q.device, non_blocking=True)[:, None]
                nll.append(-log_q[:-1].gather(-1, targets)[:, 0].double())
                base_nll.append(-log_p[:-1].gather(-1, targets)[:, 0].double())
    per_token = torch.cat(values).cpu()
    spread = float(per_token.std()) if len(per_token) > 1 else 0.0
    ppl, base_ppl = (perplexity_of(torch.cat(nll).cpu()), perplexity_of(torch.cat(base_nll).cpu())) if with_perplexity else (None, None)
    return Divergence(float(per_token.mean()), spread / math.sqrt(len(per_token)), len(per_token), ppl, base_ppl)


def _has_adapters(model: Any) -> bool:
    from loralab.lora.interface import adapter_modules

    return any(True for _ in adapter_modules(model))

