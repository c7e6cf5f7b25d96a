"""Next-token cross-entropy computed only where there is a label.

For input ids x (batch, L) and labels y (batch, L) aligned with x (-100: no loss), position t
predicts y[t + 1]. Instead of the full logits (batch, L, vocab) we run the model's body to
hidden states h (batch, L, d), keep the N positions t with y[t + 1] ≠ -100, and apply the
output head to those only: logits (N, vocab). With response-only instruction data most
prompt positions need no logits, which saves the largest activation of a small model.

Returns the *sum* of the token losses (float32) and N, so that a step of several
micro-batches can divide by the step's total token count (gradient accumulation then
equals one large batch exactly).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from loralab.data.records import IGNORE_INDEX


def loss_sum(model: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """(Σ_t −log p(y[t+1] | x[≤t]) over labelled positions, number of labelled positions)."""
    labels = batch["labels"]
    targets = labels[:, 1:]
    keep = targets != IGNORE_INDEX
    count = int(keep.sum())
    hidden = _hidden_states(model, batch["input_ids"], batch["attention_mask"])
    if hidden is None:  # a model whose head is more than a linear map: full logits
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        picked = logits[:, :-1][keep]
    else:
        picked = model.get_output_embeddings()(hidden[:, :-1][keep])
    return F.cross_entropy(picked.float(), targets[keep], reduction="sum"), count


def labelled_tokens(batch: dict[str, torch.Tensor]) -> int:
    """Positions that carry a loss in ``batch`` (N above)."""
    return int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())


def _hidden_states(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor | None:
    """The last hidden states when the model is body + linear head (Hugging Face causal LMs)."""
    config = getattr(model, "config", None)
    if config is None or getattr(config, "final_logit_softcapping", None) or getattr(config, "logit_scale", None):
        return None
    body = getattr(model, "base_model", None)
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if body is None or body is model or head is None:
        return None
    return body(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state
