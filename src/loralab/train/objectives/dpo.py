"""Direct preference optimisation on the objective seam: a micro-batch of P pairs → the DPO loss sum.

A preference micro-batch holds 2P rows: rows 0…P−1 are prompt + chosen response, rows P…2P−1
prompt + rejected response, in the same order, labelled on the response only (``collator``
pads them together, so one forward covers both sides). The policy's summed response
log-probabilities come from one forward with the output head applied at the labelled positions
only (:func:`head_only_at`), never full (2P, L, vocab) logits. The reference's come from a
:class:`ReferencePolicy`:

* :class:`AdapterOff` — the same model with its adapters switched off (``loralab.disabled``):
  LoRA, rsLoRA, DoRA, QLoRA need no second copy;
* :class:`FrozenCopy` — a frozen copy of the base (full fine-tuning);
* :class:`Precomputed` — ``batch["reference_log_probs"]`` (2P,), computed once before training.

The loss per pair is :func:`~loralab.train.objectives.preference_loss.preference_loss`, plus
``sft_weight`` × the chosen response's mean token negative log-likelihood (an RPO-style mix).
Normaliser: P. Metric sums (the step divides them by P): reward accuracy and margin, chosen and
rejected log-probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn

from loralab.data.records import IGNORE_INDEX
from loralab.errors import ConfigError
from loralab.train.objectives.base import Objective, ObjectiveOutput
from loralab.train.objectives.preference_loss import LOSSES, preference_loss
from loralab.train.objectives.supervised import head_only_at


@dataclass(frozen=True)
class PreferenceOptions:
    """β (the strength of the pull towards the reference), the loss (``sigmoid`` = DPO, ``ipo``),
    ε label smoothing (conservative DPO; sigmoid only) and the SFT term's weight."""

    beta: float = 0.1
    loss: str = "sigmoid"
    label_smoothing: float = 0.0
    sft_weight: float = 0.0

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ConfigError(f"loss must be one of {list(LOSSES)}, got {self.loss!r}")
        if not 0.0 < self.beta <= 100.0:
            raise ConfigError(f"beta must be in (0, 100], got {self.beta}")
        if not 0.0 <= self.label_smoothing < 0.5:
            raise ConfigError(f"label_smoothing must be in [0, 0.5), got {self.label_smoothing}")
        if self.label_smoothing and self.loss != "sigmoid":
            raise ConfigError("label_smoothing applies to the sigmoid (DPO) loss only")
        if not 0.0 <= self.sft_weight <= 100.0:
            raise ConfigError(f"sft_weight must be in [0, 100], got {self.sft_weight}")


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


class ReferencePolicy(Protocol):
    def log_probs(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """(2P,) summed response log-probabilities under the reference (no gradient)."""


class AdapterOff:
    """The reference is the trained model with every adapter switched off."""

    def log_probs(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        from loralab.lora.switching import disabled

        with torch.no_grad(), disabled(model):
            return response_log_probs(model, batch)[0]


@dataclass
class FrozenCopy:
    """The reference is a separate frozen model (full fine-tuning has no adapter to switch off)."""

    model: nn.Module

    def log_probs(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        with torch.no_grad():
            return response_log_probs(self.model, batch)[0]


class Precomputed:
    """The reference log-probabilities travel in the batch (``reference_log_probs``, (2P,))."""

    def log_probs(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if "reference_log_probs" not in batch:
            raise ConfigError("this preference batch carries no precomputed reference log-probabilities")
        return batch["reference_log_probs"]


class PreferenceObjective(Objective):
    """DPO / IPO / conservative DPO with an SFT term (see the module docstring)."""

    name = "dpo"

    def __init__(self, options: PreferenceOptions = PreferenceOptions(), reference: ReferencePolicy | None = None) -> None:
        self.options = options
        self.reference = reference if reference is not None else AdapterOff()

    def normaliser(self, batch: dict[str, torch.Tensor]) -> int:
        """Pairs: half the rows."""
        return int(batch["input_ids"].shape[0]) // 2

    def __call__(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> ObjectiveOutput:
        pairs = self.normaliser(batch)
        policy, counts = response_log_probs(model, batch)
        reference = self.reference.log_probs(model, batch).to(policy.dtype)
        terms = preference_loss(policy[:pairs], policy[pairs:], reference[:pairs], reference[pairs:],
                                self.options.beta, self.options.loss, self.options.label_smoothing)  # fmt: skip
        loss = terms.loss.sum()
        if self.options.sft_weight:
            loss = loss + self.options.sft_weight * (-policy[:pairs] / counts[:pairs].clamp(min=1)).sum()
        metrics = {
            "reward_accuracy": float(terms.accuracy.sum()),
            "reward_margin": float(terms.margin.sum()),
            "chosen_log_prob": float(policy[:pairs].detach().sum()),
            "rejected_log_prob": float(policy[pairs:].detach().sum()),
        }
        return ObjectiveOutput(loss, pairs, metrics)

    def collator(self, tokenizer: Any):
        """Pairs (``chosen``, ``rejected``: tokenized examples) → 2P padded rows, chosen first."""
        from loralab.data import PaddingCollator

        pad = PaddingCollator.for_tokenizer(tokenizer)
        return lambda pairs: pad([p["chosen"] for p in pairs] + [p["rejected"] for p in pairs])
