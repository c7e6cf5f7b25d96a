"""A DoRA linear layer's forward and backward as one autograd function.

DoRA (:mod:`loralab.lora.variants.dora`) with g = m / ‖W + s·B·A‖ (per output row; the norm a
constant for autograd, as in the paper and PEFT), x: (N, d_in), W: (d_out, d_in) frozen, A: (r, d_in),
B: (d_out, r), dropout keep mask k and c = 1/(1 − p), x' = c·(x ⊙ k) (x' = x without dropout):

    d = x' Wᵀ + s · h Bᵀ,   h = x' Aᵀ                                          (N, d_out), (N, r)
    y = x Wᵀ + b + (g − 1) ⊙ x' Wᵀ + g ⊙ s·h Bᵀ  =  x Wᵀ + b − x' Wᵀ + g ⊙ d
      = g ⊙ d + b                                         without dropout (one matmul with W)

Backward, with G = dL/dy and u = s · (G ⊙ g) B  (N, r):

    dL/dm = Σ_N G ⊙ d / ‖W + s·B·A‖,   dL/dB = s · (G ⊙ g)ᵀ h,   dL/dA = c · uᵀ (x ⊙ k),
    dL/dx = (G ⊙ g) W + u A                                            without dropout,
    dL/dx = G W + c · k ⊙ (((g − 1) ⊙ G) W + u A)                      with dropout.

Against the separate path (base layer, then the variant's ``output``), the norm's W is read once with the
base's, no dropped copy of x is made for the gradient of A (x, the 1-byte mask and the r-wide h are kept,
as plain LoRA's fused path does), and one (N, d_out) tensor d is kept instead of two (x' Wᵀ and s·h Bᵀ,
which the magnitude's gradient reads). With dropout, DoRA as PEFT defines it multiplies W twice in each
direction (the base sees x, the direction x'); that is the same here. Called through
:func:`loralab.lora.fused_linear.fused_forward`, which decides where a fused path applies.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from loralab.lora.dropout_path import keep_mask
from loralab.lora.variants.dora import direction_norm, layer_direction_norm


class _FusedDoraLinear(torch.autograd.Function):
    """``apply(x, W, A, B, m, norm, bias, quantized, scale, p, dtype)`` → y (..., d_out) in ``dtype``.

    W is None when the base is ``quantized`` (a module with ``dequantize(dtype)``); W, bias are frozen; m: (d_out,);
    norm: ‖W + s·B·A‖ (d_out,) if already known, else None (computed here from the W the base multiplies with).
    """

    @staticmethod
    def forward(ctx, x, W, A, B, m, norm, bias, quantized, scale: float, p: float, dtype: torch.dtype):
        d_in, r = x.shape[-1], A.shape[0]
        with torch.autocast(x.device.type, enabled=False):
            if norm is None:
                W_source = quantized.dequantize() if W is None else W  # what the separate path's norm reads
                norm = direction_norm(W_source, A, B, scale)  # (d_out,) float32
                W_c = W_source.to(dtype)
            else:
                W_c = quantized.dequantize(dtype) if W is None else W.to(dtype)
            g = (m.detach() / norm).to(dtype)
            x_c = x.to(dtype)
            A_c, B_c = A.to(dtype), B.to(dtype)
            keep, c = None, 1.0
            if p > 0:
                keep, p_used = keep_mask(x_c, p)
                c = 1.0 / (1.0 - p_used)
                x_dropped = (x_c * keep).mul_(c)
                y = F.linear(x_c, W_c, None if bias is None else bias.to(dtype))
                d = F.linear(x_dropped, W_c)
                y.sub_(d)
                h = F.linear(x_dropped, A_c)
                del x_dropped
            else:
                d = F.linear(x_c, W_c)
                h = F.linear(x_c, A_c)
            d.view(-1, d.shape[-1]).addmm_(h.view(-1, r), B_c.T, alpha=scale)
            if p > 0:
                y.addcmul_(d, g)
            else:
                y = d * g if bias is None else torch.addcmul(bias.to(dtype), d, g)
        ctx.save_for_backward(x, W, A, B, m, h, keep, d, g, norm)
        ctx.quantized, ctx.scale, ctx.c, ctx.dtype, ctx.d_in = quantized, scale, c, dtype, d_in
        return y

    @staticmethod
    def backward(ctx, grad_y: torch.Tensor):
        x, W, A, B, m, h, keep, d, g, norm = ctx.saved_tensors
        dtype, s, c = ctx.dtype, ctx.scale, ctx.c
        need_x, need_A, need_B, need_m = (ctx.needs_input_grad[i] for i in (0, 2, 3, 4))
        grad_x = grad_A = grad_B = grad_m = None
        with torch.autocast(grad_y.device.type, enabled=False):
            G = grad_y.reshape(-1, grad_y.shape[-1]).to(dtype)  # (N, d_out)
            if need_m:
                grad_m = ((G * d.reshape(G.shape)).sum(0, dtype=norm.dtype) / norm).to(m.dtype)
            Gg = G * g
            if need_B:
                grad_B = torch.mm(Gg.T, h.reshape(-1, h.shape[-1])).mul_(s).to(B.dtype)
            if need_x or need_A:
                u = torch.mm(Gg, B.to(dtype)).mul_(s)  # (N, r)
            if need_A:
                x_k = x.reshape(-1, ctx.d_in).to(dtype)
                if keep is not None:
                    x_k = x_k * keep.reshape(-1, ctx.d_in)
                grad_A = torch.mm(u.T, x_k).mul_(c).to(A.dtype)
            if need_x:
                W_c = ctx.quantized.dequantize(dtype) if W is None else W.to(dtype)
                A_c = A.to(dtype)
                if keep is None:
                    grad_x = torch.mm(Gg, W_c).addmm_(u, A_c)
                else:
                    grad_x = torch.mm(G, W_c)
                    direction = torch.mm(G * (g - 1), W_c).addmm_(u, A_c)
                    grad_x += direction.mul_(keep.reshape(-1, ctx.d_in)).mul_(c)
                grad_x = grad_x.view(x.shape).to(x.dtype)
        return grad_x, None, grad_A, grad_B, grad_m, None, None, None, None, None, None


def fused_dora(layer, name: str, x, W, bias, quantized, p: float, dtype: torch.dtype) -> torch.Tensor:
    """Adapter ``name``'s DoRA layer output through :class:`_FusedDoraLinear`; where no graph is built, with the
    norm the layer keeps between calls (:func:`~loralab.lora.variants.dora.layer_direction_norm`)."""
    A, B, m = layer.lora_A[name], layer.lora_B[name], layer.variant_params[name]["magnitude"]
    norm = None if torch.is_grad_enabled() else layer_direction_norm(layer, name, W)
    return _FusedDoraLinear.apply(x, W, A, B, m, norm, bias, quantized, layer.specs[name].scale, p, dtype)
