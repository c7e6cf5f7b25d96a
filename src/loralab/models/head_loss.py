"""The output head and the cross-entropy in one pass, a block of rows at a time: no (N, vocab) tensor kept.

For hidden states h: (N, d), a linear head W: (V, d) (bias b: (V,)) and targets y: (N,),

    loss = Σ_i [logsumexp(z_i) − z_i[y_i]],   z_i = W h_i + b,

computed ``rows`` positions at a time. The gradients are formed in the same pass, while each block's
logits exist: with p_i = softmax(z_i) and g_i = p_i − onehot(y_i),  ∂loss/∂h_i = Wᵀ g_i,
∂loss/∂W = Σ_i g_i h_iᵀ, ∂loss/∂b = Σ_i g_i. Backward only scales them by the incoming gradient
(the loss is a scalar). The logits are computed as the head would (under autocast: a bf16 matmul,
then float32 — float64 for a float64 model — for the softmax), so the loss equals ``cross_entropy(head(h).float(), y, reduction="sum")``
to rounding. Peak extra memory is a few (rows, V) float32 blocks instead of (N, V) logits, their
log-softmax kept for backward, and their gradient.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: rows per block: 128 × a 49k vocabulary is 25 MB of float32 logits
BLOCK_ROWS = 128


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, rows: int):
        needs_h, needs_w, needs_b = ctx.needs_input_grad[:3]
        compute = torch.promote_types(torch.promote_types(hidden.dtype, weight.dtype), torch.float32)
        total = torch.zeros((), dtype=compute, device=hidden.device)
        grad_h = torch.empty_like(hidden) if needs_h else None
        grad_w = torch.zeros(weight.shape, dtype=compute, device=weight.device) if needs_w else None
        grad_b = torch.zeros(bias.shape, dtype=compute, device=bias.device) if needs_b else None
        device_type = hidden.device.type
        if torch.is_autocast_enabled(device_type):  # cast the head once, not once per block
            dtype = torch.get_autocast_dtype(device_type)
            weight_mm = weight.to(dtype)
            bias_mm = None if bias is None else bias.to(dtype)
        else:
            weight_mm, bias_mm = weight, bias
        for start in range(0, hidden.shape[0], rows):
            h, y = hidden[start : start + rows], targets[start : start + rows]
            logits = F.linear(h, weight_mm, bias_mm)  # under autocast: the head's own compute dtype
            z = logits.to(compute)
            lse = torch.logsumexp(z, dim=-1)
            total += (lse - z.gather(1, y[:, None]).squeeze(1)).sum()
            if not (needs_h or needs_w or needs_b):
                continue
            g = z.sub_(lse[:, None]).exp_()  # softmax, in place of the float32 logits
            g[torch.arange(len(y), device=g.device), y] -= 1.0
            g_mm = g.to(logits.dtype)  # the gradient enters the matmuls as autograd would pass it
            if needs_h:
                grad_h[start : start + rows] = (g_mm @ weight_mm.to(g_mm.dtype)).to(hidden.dtype)
            if needs_w:
                grad_w += (g_mm.T @ h.to(g_mm.dtype)).to(compute)
            if needs_b:
                grad_b += g.sum(0)
        ctx.save_for_backward(*(t for t in (grad_h, grad_w, grad_b) if t is not None))
        ctx.present = (needs_h, needs_w, needs_b)
        ctx.dtypes = (hidden.dtype, weight.dtype, None if bias is None else bias.dtype)
        return total

    @staticmethod
    def backward(ctx, grad_total):
        saved = iter(ctx.saved_tensors)
        grads = []
        for present, dtype in zip(ctx.present, ctx.dtypes):
            grads.append((next(saved) * grad_total).to(dtype) if present else None)
        return (*grads, None, None)


def linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                         targets: torch.Tensor, rows: int = BLOCK_ROWS) -> torch.Tensor:  # fmt: skip
    """Σ_i cross-entropy(W h_i + b, y_i) (a float32 or float64 scalar) for hidden: (N, d), weight: (V, d), targets: (N,)."""
    return _LinearCrossEntropy.apply(hidden, weight, bias, targets, rows)
