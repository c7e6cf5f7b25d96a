"""Next-token cross-entropy where there is a label (instruction tuning and continued pretraining).

For input ids x (batch, L) and labels y (batch, L) aligned with x (-100: no loss), position t
predicts y[t + 1]. The model's forward runs as usual, but a pre-hook on its output head keeps
only the N hidden states h[b, t] with y[b, t + 1] ≠ −100, so the head computes logits (N, vocab)
instead of (batch, L, vocab). With response-only instruction data most prompt positions need no
logits: this saves the largest activation of a small model. Where the head is a plain linear layer
it goes further: the head and the cross-entropy run together a block of rows at a time
(:func:`~loralab.models.head.fused_head_loss_at`), so no (N, vocab) logits are kept for backward.
Returns the *sum* of the N token losses (float32), and N as the normaliser.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from loralab.data.records import IGNORE_INDEX
from loralab.models.head import HeadLoss, fused_head_loss_at, head_only_at
from loralab.train.objectives.base import Objective, ObjectiveOutput, RunContext


class SupervisedObjective(Objective):
    name = "supervised"

    def __init__(self, head_loss: HeadLoss | None = None) -> None:
        #: False once the model turned out to transform its head's output (then logits, as usual)
        self.fuse_head = True
        #: the fused head + cross-entropy (None: loralab's, :mod:`loralab.models.head_loss`)
        self.head_loss = head_loss

    @classmethod
    def for_run(cls, options: None, context: RunContext) -> "SupervisedObjective":
        return cls(context.head_loss)

    def normaliser(self, batch: dict[str, torch.Tensor]) -> int:
        """Positions that carry a loss: N above."""
        return int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())

    def __call__(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> ObjectiveOutput:
        targets = batch["labels"][:, 1:]
        keep = targets != IGNORE_INDEX
        if self.fuse_head:
            with fused_head_loss_at(model, keep, targets[keep], self.head_loss) as fused:
                if fused is not None:
                    output = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False)
                    loss = fused.of(output.logits)
                    if loss is not None:
                        return ObjectiveOutput(loss, keep.sum())
            self.fuse_head = False  # this model's head cannot be fused: logits from now on
        with head_only_at(model, keep) as restricted:
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False).logits
        picked = logits if restricted else logits[:, :-1][keep]
        loss = F.cross_entropy(picked.float(), targets[keep], reduction="sum")
        return ObjectiveOutput(loss, keep.sum())
