"""y = x Ŵᵀ for a 4-bit weight, without keeping the dequantized weight for backward.

Ŵ (d_out, d_in) is rebuilt from the 4-bit codes in the forward and again in the backward
(dL/dx = dL/dy · Ŵ); nothing but a reference to the layer is saved, so training holds the
base at 4 bits instead of a 16-bit copy of every weight until backward (as QLoRA does).
No gradient reaches the weight: it is frozen.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class NF4Matmul(torch.autograd.Function):
    """``NF4Matmul.apply(x, layer, dtype)``: x (..., d_in) → (..., d_out) in ``dtype``.

    ``layer.dequantize(dtype)`` gives Ŵ; both products run in ``dtype`` with autocast off.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, layer: nn.Module, dtype: torch.dtype) -> torch.Tensor:
        ctx.layer, ctx.dtype, ctx.x_dtype = layer, dtype, x.dtype
        with torch.autocast(x.device.type, enabled=False):
            return F.linear(x.to(dtype), layer.dequantize(dtype))

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        if not ctx.needs_input_grad[0]:
            return None, None, None
        with torch.autocast(grad_out.device.type, enabled=False):
            grad_x = grad_out.to(ctx.dtype) @ ctx.layer.dequantize(ctx.dtype)
        return grad_x.to(ctx.x_dtype), None, None
