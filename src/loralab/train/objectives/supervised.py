"""Next-token cross-entropy where there is a label (instruction tuning and continued pretraining).

For input ids x (batch, L) and labels y (batch, L) aligned with x (-100: no loss), position t
predicts y[t + 1]. The model's forward runs as usual, but a pre-hook on its output head keeps
only the N hidden states h[b, t] with y[b, t + 1] ≠ −100, so the head computes logits (N, vocab)
instead of (batch, L, vocab). With response-only instruction data most prompt positions need no
logits: this saves the largest activation of a small model. Returns the *sum* of the N token
losses (float32), and N as the normaliser.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from loralab.data.records import IGNORE_INDEX
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


def output_head(model: nn.Module) -> nn.Module | None:
    """The module that maps hidden states to logits (through a DDP/FSDP wrapper's ``module``), or None."""
    inner = getattr(model, "module", model)
    head = inner.get_output_embeddings() if hasattr(inner, "get_output_embeddings") else None
    return head if isinstance(head, nn.Module) else None


@contextmanager
def head_only_at(model: nn.Module, keep: torch.Tensor) -> Iterator[bool]:
    """Within the block, the output head sees only h[:, :-1][keep]: (N, d) instead of (batch, L, d).

    Yields whether it could (False: the model has no separate head and returns full logits).
    """
    head = output_head(model)
    if head is None:
        yield False
        return

    def select(module: nn.Module, args: tuple) -> tuple:
        hidden = args[0]
        return (hidden[:, :-1][keep],) + tuple(args[1:])

    handle = head.register_forward_pre_hook(select)
    try:
        yield True
    finally:
        handle.remove()
