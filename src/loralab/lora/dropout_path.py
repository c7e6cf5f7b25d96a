"""Dropout followed by the down-projection A, without keeping a dropped copy of x.

``F.linear(F.dropout(x), A)`` keeps, for backward, a mask and the dropped input (a second
tensor as large as x, one per adapter even when several adapters share x, as q/k/v do).
Here backward rebuilds dropout(x) from x and a 1-byte drop mask. The 1/(1 − p) rescaling is
applied to the r-wide activation and gradient, never to a d_in-wide tensor.
"""

from __future__ import annotations

import torch


class _DropoutThenProject(torch.autograd.Function):
    """h = (x ⊙ m) Aᵀ / (1 − p) with m ~ Bernoulli(1 − p); x: (..., d_in), A: (r, d_in) → h: (..., r)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, A: torch.Tensor, p: float) -> torch.Tensor:
        drop = torch.empty_like(x, dtype=torch.bool).bernoulli_(p)
        h = torch.nn.functional.linear(x.masked_fill(drop, 0), A) * (1.0 / (1.0 - p))
        ctx.save_for_backward(x, A, drop)
        ctx.p = p
        return h

    @staticmethod
    def backward(ctx, grad_h: torch.Tensor):
        x, A, drop = ctx.saved_tensors
        grad_h = grad_h * (1.0 / (1.0 - ctx.p))  # r-wide
        grad_x = grad_A = None
        if ctx.needs_input_grad[0]:
            grad_x = (grad_h @ A.to(grad_h.dtype)).masked_fill_(drop, 0).to(x.dtype)
        if ctx.needs_input_grad[1]:
            dropped = x.masked_fill(drop, 0).to(grad_h.dtype)
            grad_A = (grad_h.reshape(-1, grad_h.shape[-1]).T @ dropped.reshape(-1, x.shape[-1])).to(A.dtype)
        return grad_x, grad_A, None


def dropout_then_project(x: torch.Tensor, A: torch.Tensor, p: float) -> torch.Tensor:
    """dropout_p(x) @ Aᵀ, memory-lean in backward (see module docstring)."""
    return _DropoutThenProject.apply(x, A, p)
