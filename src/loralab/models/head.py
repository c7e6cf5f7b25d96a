"""The output head of a causal LM, and running it only where a logit is needed."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import torch
from torch import nn

#: Σ_i cross-entropy(W h_i + b, y_i) from hidden (N, d), weight (V, d), bias (V,) or None, targets (N,): a scalar
HeadLoss = Callable[[torch.Tensor, torch.Tensor, "torch.Tensor | None", torch.Tensor], torch.Tensor]


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


class FusedHeadLoss:
    """What :func:`fused_head_loss_at` yields: after the model's forward, :meth:`of` gives the loss."""

    def __init__(self) -> None:
        self.loss: torch.Tensor | None = None

    def of(self, output_logits: torch.Tensor) -> torch.Tensor | None:
        """The summed cross-entropy, or None if the model transformed its head's output (softcapping, scaling)."""
        return self.loss if self.loss is not None and output_logits is self.loss else None


@contextmanager
def fused_head_loss_at(model: nn.Module, keep: torch.Tensor, targets: torch.Tensor,
                       loss: HeadLoss | None = None) -> Iterator[FusedHeadLoss | None]:  # fmt: skip
    """Within the block the output head returns Σ cross-entropy(head(h), targets) over h[:, :-1][keep]
    in place of its logits, computed by ``loss`` (default: loralab's blocks of rows,
    :func:`~loralab.models.head_loss.linear_cross_entropy`; Liger's with ``train.liger_kernels``).

    Yields None where the head is not a plain ``nn.Linear`` (an adapter on it, a quantized or tied-transposed
    head): the caller computes logits as usual. targets: (N,) with N = keep.sum().
    """
    from loralab.models.head_loss import linear_cross_entropy

    loss = loss or linear_cross_entropy
    head = output_head(model)
    if type(head) is not nn.Linear or "forward" in head.__dict__ or head._forward_pre_hooks or head._forward_hooks:
        yield None
        return
    fused = FusedHeadLoss()

    def forward(hidden: torch.Tensor) -> torch.Tensor:
        fused.loss = loss(hidden[:, :-1][keep], head.weight, head.bias, targets)
        return fused.loss

    head.forward = forward
    try:
        yield fused
    finally:
        del head.forward
