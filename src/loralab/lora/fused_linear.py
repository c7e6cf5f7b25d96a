"""A LoRA linear layer's forward and backward as one autograd function.

    y = x Wᵀ + b + s · h Bᵀ,     h = c · (x ⊙ m) Aᵀ

with x: (N, d_in), W: (d_out, d_in) frozen (dense, or rebuilt from 4 bits by the base's
``dequantize``), A: (r, d_in), B: (d_out, r), scale s, dropout keep mask m (all ones without
dropout) and c = 1/(1 − p). Backward, with g = dL/dy and u = s·c · g B  (N, r):

    dL/dB = s · gᵀ h,    dL/dA = uᵀ (x ⊙ m),    dL/dx = g W + (u A) ⊙ m.

Against base(x) + the adapter path as separate autograd nodes, the low-rank product is added
into the base output in place (one ``addmm_``, no d_out-wide temporaries for s·h Bᵀ and the sum),
and into the input gradient in place without dropout (no d_in-wide partial gradient and sum).
It saves what the separate path saves: x (shared with the other adapters that read it), the
r-wide h, the 1-byte mask with dropout, and references to W, A, B (a 4-bit base saves nothing:
W is dequantized again in backward). Under autocast everything runs in the autocast dtype, as
the separate path's matmuls do; x is saved as given and cast again in backward.

Used by ``LoraLinear`` for one active adapter on a frozen ``nn.Linear`` or 4-bit base (:func:`fused_forward`),
plain LoRA here and DoRA in :mod:`loralab.lora.fused_dora` (table ``FUSED``); anything else, and code under
``torch.compile`` (the compiler fuses the separate path itself), takes the separate path.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from loralab.lora.dropout_path import keep_mask
from loralab.lora.fused_dora import fused_dora


class _FusedLoraLinear(torch.autograd.Function):
    """``apply(x, W, A, B, bias, quantized, scale, p, dtype)`` → y (..., d_out) in ``dtype``.

    W is None when the base is ``quantized`` (a module with ``dequantize(dtype)``); W, bias are frozen.
    """

    @staticmethod
    def forward(ctx, x, W, A, B, bias, quantized, scale: float, p: float, dtype: torch.dtype):
        d_in, r = x.shape[-1], A.shape[0]
        with torch.autocast(x.device.type, enabled=False):
            x_c = x.to(dtype)
            W_c = quantized.dequantize(dtype) if W is None else W.to(dtype)
            A_c, B_c = A.to(dtype), B.to(dtype)
            y = F.linear(x_c, W_c, None if bias is None else bias.to(dtype))
            keep, c = None, 1.0
            if p > 0:
                keep, p_used = keep_mask(x_c, p)
                c = 1.0 / (1.0 - p_used)
                h = F.linear(x_c * keep, A_c).mul_(c)
            else:
                h = F.linear(x_c, A_c)
            y.view(-1, y.shape[-1]).addmm_(h.view(-1, r), B_c.T, alpha=scale)
        ctx.save_for_backward(x, W, A, B, h, keep)
        ctx.quantized, ctx.scale, ctx.c, ctx.dtype, ctx.d_in = quantized, scale, c, dtype, d_in
        return y

    @staticmethod
    def backward(ctx, grad_y: torch.Tensor):
        x, W, A, B, h, keep = ctx.saved_tensors
        dtype, s, c = ctx.dtype, ctx.scale, ctx.c
        need_x, need_A, need_B = ctx.needs_input_grad[0], ctx.needs_input_grad[2], ctx.needs_input_grad[3]
        grad_x = grad_A = grad_B = None
        with torch.autocast(grad_y.device.type, enabled=False):
            g = grad_y.reshape(-1, grad_y.shape[-1]).to(dtype)  # (N, d_out)
            h2 = h.reshape(-1, h.shape[-1])  # (N, r)
            if need_B:
                grad_B = torch.mm(g.T, h2).mul_(s).to(B.dtype)
            if need_x or need_A:
                u = torch.mm(g, B.to(dtype)).mul_(s * c)  # (N, r)
            if need_A:
                x_m = x.reshape(-1, ctx.d_in).to(dtype)
                if keep is not None:
                    x_m = x_m * keep.reshape(-1, ctx.d_in)
                grad_A = torch.mm(u.T, x_m).to(A.dtype)
            if need_x:
                W_c = ctx.quantized.dequantize(dtype) if W is None else W.to(dtype)
                grad_x = torch.mm(g, W_c)  # (N, d_in)
                if keep is None:
                    grad_x.addmm_(u, A.to(dtype))
                else:
                    grad_x += torch.mm(u, A.to(dtype)).mul_(keep.reshape(-1, ctx.d_in))
                grad_x = grad_x.view(x.shape).to(x.dtype)
        return grad_x, None, grad_A, grad_B, None, None, None, None, None


def fused_lora(layer, name: str, x, W, bias, quantized, p: float, dtype: torch.dtype) -> torch.Tensor:
    """Plain LoRA adapter ``name``'s layer output through :class:`_FusedLoraLinear`."""
    A, B, scale = layer.lora_A[name], layer.lora_B[name], layer.specs[name].scale
    return _FusedLoraLinear.apply(x, W, A, B, bias, quantized, scale, p, dtype)


#: variant name → its fused layer function ``(layer, adapter name, x, W, bias, quantized base, dropout p, dtype) → y``
FUSED = {"lora": fused_lora, "dora": fused_dora}


def fused_forward(layer: nn.Module, x: torch.Tensor) -> torch.Tensor | None:
    """``layer(x)`` through its variant's fused function (``FUSED``) where one applies, else None (take the separate path).

    It applies to a ``LoraLinear`` with ``fused`` set, exactly one active adapter of a variant in ``FUSED``,
    nothing merged, a base that is exactly ``nn.Linear`` with frozen weight and bias, or a 4-bit base (a module
    with ``dequantize``, its bias frozen), outside ``torch.compile``; without autocast the input, the base
    weight (or the 4-bit base's compute dtype), the factors and the variant's parameters must share one dtype.
    """
    if not layer.fused or len(layer.active) != 1 or layer.merged or torch.compiler.is_compiling():
        return None
    name = layer.active[0]
    spec = layer.specs[name]
    function = FUSED.get(spec.variant)
    if function is None:
        return None
    base = layer.base_layer
    quantized = hasattr(base, "dequantize")
    if quantized:
        W, weight_dtype = None, base.compute_dtype
    elif type(base) is nn.Linear and not base.weight.requires_grad:
        W, weight_dtype = base.weight, base.weight.dtype
    else:
        return None
    bias = base.bias
    if bias is not None and bias.requires_grad:
        return None
    A, B = layer.lora_A[name], layer.lora_B[name]
    if torch.is_autocast_enabled(x.device.type):
        dtype = torch.get_autocast_dtype(x.device.type)
    elif x.dtype == weight_dtype == A.dtype == B.dtype and all(t.dtype == x.dtype for t in layer.variant_params[name].values()):
        dtype = x.dtype
    else:
        return None
    return function(layer, name, x, W, bias, base if quantized else None, layer.dropout_p(name), dtype)
