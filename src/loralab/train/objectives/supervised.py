"""Next-token cross-entropy where there is a label (instruction tuning and continued pretraining).

For input ids x (batch, L) and labels y (batch, L) aligned with x (-100: no loss), position t
predicts y[t + 1]. The model's forward runs as usual, but a pre-hook on its output head keeps
only the N hidden states h[b, t] with y[b, t + 1] ≠ −100, so the head computes logits (N, vocab)
instead of (batch, L, vocab). With response-only instruction data most prompt positions need no
logits: this saves the largest activation of a small model. Returns the *sum* of the N token
losses (float32), and N as the normaliser.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from loralab.data.records import IGNORE_INDEX
from loralab.models.head import head_only_at
from loralab.train.objectives.base import Objective, ObjectiveOutput


class SupervisedObjective(Objective):
    name = "supervised"

    def normaliser(self, batch: dict[str, torch.Tensor]) -> int:
        """Positions that carry a loss: N above."""
        return int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())

    def __call__(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> ObjectiveOutput:
        targets = batch["labels"][:, 1:]
        keep = targets != IGNORE_INDEX
        with head_only_at(model, keep) as restricted:
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False).logits
        picked = logits if restricted else logits[:, :-1][keep]
        loss = F.cross_entropy(picked.float(), targets[keep], reduction="sum")
        return ObjectiveOutput(loss, int(keep.sum()))
