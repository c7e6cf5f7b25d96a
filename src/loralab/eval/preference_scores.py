"""Preference losses on sequence log-probabilities (DPO, conservative DPO, IPO), as plain functions.

For a pair (x, y_w, y_l) let the policy's and the reference's summed response log-probabilities
be π_w, π_l and ρ_w, ρ_l, and the implicit rewards r_w = β(π_w − ρ_w), r_l = β(π_l − ρ_l).
With h = r_w − r_l:

* ``sigmoid`` (DPO, Rafailov et al. 2023):        L = −(1 − ε) log σ(h) − ε log σ(−h)
  (ε = ``label_smoothing``: conservative DPO, for labels flipped with probability ε; ε = 0 is DPO);
* ``ipo`` (Azar et al. 2023):                       L = (h / β − 1 / (2β))².

All inputs are (pairs,) tensors; the loss is returned per pair (pairs,), so that a trainer can
sum over micro-batches and divide by the number of pairs. At the start of LoRA training the
policy equals the reference, h = 0, and the DPO loss is log 2 for every pair.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from loralab.data.records import IGNORE_INDEX
from loralab.models.head import head_only_at

LOSSES = ("sigmoid", "ipo")


@dataclass(frozen=True)
class PreferenceTerms:
    """Per-pair loss and rewards, each (pairs,)."""

    loss: torch.Tensor
    chosen_reward: torch.Tensor
    rejected_reward: torch.Tensor

    @property
    def accuracy(self) -> torch.Tensor:
        """1 where the implicit reward prefers the chosen response, else 0."""
        return (self.chosen_reward > self.rejected_reward).to(self.loss.dtype)

    @property
    def margin(self) -> torch.Tensor:
        return self.chosen_reward - self.rejected_reward


def preference_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    reference_chosen: torch.Tensor,
    reference_rejected: torch.Tensor,
    beta: float,
    loss: str = "sigmoid",
    label_smoothing: float = 0.0,
) -> PreferenceTerms:
    """The per-pair loss and rewards above (inputs (pairs,) summed log-probabilities)."""
    chosen = beta * (policy_chosen - reference_chosen)
    rejected = beta * (policy_rejected - reference_rejected)
    h = chosen - rejected
    if loss == "sigmoid":
        per_pair = -(1.0 - label_smoothing) * F.logsigmoid(h) - label_smoothing * F.logsigmoid(-h)
    elif loss == "ipo":
        per_pair = (h / beta - 1.0 / (2.0 * beta)) ** 2
    else:
        raise ValueError(f"unknown preference loss {loss!r}; known: {', '.join(LOSSES)}")
    return PreferenceTerms(per_pair, chosen.detach(), rejected.detach())


def sequence_log_probs(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed log-probability of each row's labelled tokens, and their count.

    ``logits`` (B, L, V) from inputs x, ``labels`` (B, L) aligned with x (−100: not scored);
    position t predicts labels[t + 1]. Returns (B,) sums Σ_t log p(y_{t+1} | x_≤t) in float32
    (float64 if the logits are float64) and (B,) token counts.
    """
    targets = labels[:, 1:]
    keep = targets != IGNORE_INDEX
    dtype = torch.float64 if logits.dtype == torch.float64 else torch.float32
    log_probs = torch.log_softmax(logits[:, :-1].to(dtype), dim=-1)
    picked = log_probs.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (picked * keep).sum(-1), keep.sum(-1)


def response_log_probs(model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows,) summed log-probabilities of each row's labelled tokens, and (rows,) their counts.

    Row b, position t predicts labels[b, t + 1]; the head sees only those N positions: logits (N, vocab).
    """
    targets = batch["labels"][:, 1:]
    keep = targets != IGNORE_INDEX
    with head_only_at(model, keep) as restricted:
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False).logits
    picked = logits if restricted else logits[:, :-1][keep]
    dtype = torch.float64 if picked.dtype == torch.float64 else torch.float32
    token_log_probs = torch.log_softmax(picked.to(dtype), dim=-1).gather(-1, targets[keep].unsqueeze(-1)).squeeze(-1)
    rows = torch.arange(keep.shape[0], device=keep.device).unsqueeze(1).expand_as(keep)[keep]
    sums = torch.zeros(keep.shape[0], dtype=token_log_probs.dtype, device=keep.device).index_add(0, rows, token_log_probs)
    return sums, keep.sum(-1)
