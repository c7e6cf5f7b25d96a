"""A training objective: (model, micro-batch) → (loss sum, normaliser, metric sums).

The step divides the summed loss of all its micro-batches by the sum of their normalisers
(labelled tokens for cross-entropy, pairs for a preference loss), so k micro-batches give
exactly the gradient of one batch k times larger. The normaliser is counted from the batch
alone, before any forward, so that each micro-batch can be back-propagated as soon as it is done.
Objectives call the model's own forward: hooks and wrappers (DDP, FSDP) see every call.

The table :data:`loralab.train.objectives.OBJECTIVES` holds the classes; the trainer builds the
recipe's with :meth:`Objective.for_run` from its options (the recipe section named by
``section``, of type ``options_type``) and a :class:`RunContext`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from loralab.models.head import HeadLoss


@dataclass(frozen=True)
class ObjectiveOutput:
    """``loss_sum``: a scalar tensor to back-propagate (after division by the step's normaliser);
    ``normaliser``: this micro-batch's share of it; ``metrics``: sums over the micro-batch, which the
    step also divides by the normaliser (e.g. a preference accuracy summed over pairs); 0-dim tensors
    left on the device (the step reads all of them at once, at the end of the step) or numbers."""

    loss_sum: torch.Tensor
    normaliser: int | torch.Tensor  # a 0-dim tensor is not read back: the step counts the normaliser on the host
    metrics: dict[str, torch.Tensor | float] = field(default_factory=dict)


@dataclass
class RunContext:
    """What an objective may use while a run is set up (after the trainable weights are chosen).

    ``frozen_base()`` loads a frozen copy of the base model (once); ``fresh``: the model still has
    the base's weights (a new run, not a resumed one); ``folder`` is where the run keeps files (None
    when this process does not write); ``autocast()`` is the training precision's context;
    ``batch_size`` the micro-batch size; ``progress`` whether to show progress bars; ``head_loss`` the fused
    output head + cross-entropy to use (None: loralab's; Liger's with ``train.liger_kernels``).
    """

    model: Any
    tokenizer: Any
    dataset: Any
    uses_adapter: bool
    frozen_base: Callable[[], Any]
    fresh: bool
    folder: Path | None
    autocast: Callable[[], Any]
    batch_size: int
    progress: bool = False
    head_loss: HeadLoss | None = None


class Objective(ABC):
    name: ClassVar[str]
    #: the recipe section holding this objective's options, and their type (None: it has none)
    section: ClassVar[str | None] = None
    options_type: ClassVar[type | None] = None
    #: what :meth:`normaliser` counts, as named in the metrics of each step
    normaliser_name: ClassVar[str] = "labelled_tokens"
    #: the data the objective trains on (``data.regime`` values it accepts)
    regimes: ClassVar[tuple[str, ...]] = ("instruction", "pretraining")

    @classmethod
    def for_run(cls, options: Any, context: RunContext) -> Objective:
        """The objective for one run (default: no options, nothing to prepare)."""
        return cls()

    def training_examples(self, dataset: Any) -> Any:
        """The examples the trainer draws micro-batches from (default: the data set as built)."""
        return dataset

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
