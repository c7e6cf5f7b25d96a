"""The output head of a causal LM, and running it only where a logit is needed."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn


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
