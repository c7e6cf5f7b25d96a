"""Dropout followed by the down-projection A, without keeping the dropped copy of x.

``F.linear(F.dropout(x), A)`` keeps, for backward, a mask and the dropped input (one
more tensor as large as x). Here backward rebuilds dropout(x) from x, which the frozen
base layer keeps anyway, and a 1-byte mask: the adapter adds 1 byte per input element
instead of (1 + itemsize).
"""

from __future__ import annotations

import torch


class _DropoutThenProject(torch.autograd.Function):
    """h = (x ⊙ m / (1 − p)) Aᵀ with m ~ Bernoulli(1 − p); x: (..., d_in), A: (r, d_in) → h: (..., r)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, A: torch.Tensor, p: float) -> torch.Tensor:
        keep = torch.empty_like(x, dtype=torch.bool).bernoulli_(1.0 - p)
        dropped = x * keep * (1.0 / (1.0 - p))
        h = torch.nn.functional.linear(dropped, A)
        ctx.save_for_backward(x, A, keep)
        ctx.p = p
        return h

    @staticmethod
    def backward(ctx, grad_h: torch.Tensor):
        x, A, keep = ctx.saved_tensors
        inv_keep = 1.0 / (1.0 - ctx.p)
        grad_x = grad_A = None
        if ctx.needs_input_grad[0]:
            grad_x = ((grad_h @ A.to(grad_h.dtype)) * keep * inv_keep).to(x.dtype)
        if ctx.needs_input_grad[1]:
            dropped = (x * keep * inv_keep).to(grad_h.dtype)
            grad_A = (grad_h.reshape(-1, grad_h.shape[-1]).T @ dropped.reshape(-1, x.shape[-1])).to(A.dtype)
        return grad_x, grad_A, None


def dropout_then_project(x: torch.Tensor, A: torch.Tensor, p: float) -> torch.Tensor:
    """dropout_p(x) @ Aᵀ, memory-lean in backward (see module docstring)."""
    return _DropoutThenProject.apply(x, A, p)
