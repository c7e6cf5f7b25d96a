"""A training objective: (model, micro-batch) → (loss sum, normaliser, metric sums).

The step divides the summed loss of all its micro-batches by the sum of their normalisers
(labelled tokens for cross-entropy, pairs for a preference loss), so k micro-batches give
exactly the gradient of one batch k times larger. The normaliser is counted from the batch
alone, before any forward, so that each micro-batch can be back-propagated as soon as it is done.
Objectives call the model's own forward: hooks and wrappers (DDP, FSDP) see every call.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn


@dataclass(frozen=True)
class ObjectiveOutput:
    """``loss_sum``: a scalar tensor to back-propagate (after division by the step's normaliser);
    ``normaliser``: this micro-batch's share of it; ``metrics``: sums over the micro-batch, which the
    step also divides by the normaliser (e.g. a preference accuracy summed over pairs)."""

    loss_sum: torch.Tensor
    normaliser: int
    metrics: dict[str, float] = field(default_factory=dict)


class Objective(ABC):
    name: ClassVar[str]

    @abstractmethod
    def normaliser(self, batch: dict[str, torch.Tensor]) -> int:
        """What this micro-batch adds to the step's denominator, from the batch alone (no forward)."""

    @abstractmethod
    def __call__(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> ObjectiveOutput:
        """The loss sum over the micro-batch (batch tensors already on the model's device)."""

    def collator(self, tokenizer: Any):
        """Examples → one padded micro-batch (default: :class:`~loralab.data.PaddingCollator`)."""
        from loralab.data import PaddingCollator

        return PaddingCollator.for_tokenizer(tokenizer)
