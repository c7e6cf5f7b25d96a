"""DoRA, weight-decomposed LoRA (Liu et al. 2024): W' = m ⊙ (W + ΔL) / ‖W + ΔL‖.

ΔL = scale·B·A; ‖·‖ is the norm of each output row of the (d_out, d_in) matrix, and m: (d_out,) is a
learned magnitude, initialised to ‖W + ΔL‖ = ‖W‖ (B·A = 0), so the model starts unchanged.
As in the paper (Sec. 4.3) and PEFT, the norm is treated as a constant in the backward pass.
With g = m / ‖W + ΔL‖ the layer computes

    y = base(x) + (g − 1) ⊙ (W x') + g ⊙ scale·B A x',

with x' = dropout(x); without dropout W x' is the base output less its bias, so W x is not
computed twice. Embeddings (W: (dim, num_embeddings) here, m: (dim,)) have no dropout and no bias:
y = g ⊙ (base(x) + scale·B A[:, x]). Linear, GPT-2 Conv1D and NF4 bases (W dequantized for the norm).
File tensor: ``lora_magnitude_vector`` (d_out,), and ``use_dora: true`` in adapter_config.json.
On a ``LoraLinear`` with one active adapter, :mod:`loralab.lora.fused_dora` computes the same as one autograd
function (the same mask, the same norm: :func:`direction_norm`).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from loralab.lora import dropout_path
from loralab.lora.delta import compute_dtype
from loralab.lora.variants.base import Params, Variant


def row_norm(W: torch.Tensor) -> torch.Tensor:
    """‖W[i, :]‖₂ for each output row i: (d_out, d_in) → (d_out,)."""
    return torch.linalg.vector_norm(W, dim=1)


@torch.no_grad()
def direction_norm(W: torch.Tensor, A: torch.Tensor, B: torch.Tensor, scale: float) -> torch.Tensor:
    """‖W + s·B·A‖ per output row, float32 or better, a constant for autograd: W (d_out, d_in) → (d_out,).

    Expanded so that no (d_out, d_in) sum is formed, only r-wide products:
    ‖W_i + s(BA)_i‖² = ‖W_i‖² + Σ_k B_ik · (2s·(W Aᵀ)_ik + s²·(B A Aᵀ)_ik).
    Autocast is off here: its products would be bf16, and (PyTorch 2.6) a bf16 copy of A or B it cached under
    no_grad was reused by the adapter's own forward, which then gave A and B no gradient.
    """
    compute = torch.promote_types(compute_dtype(W.dtype), compute_dtype(A.dtype))
    with torch.autocast(W.device.type, enabled=False):
        W, A, B = W.to(compute), A.to(compute), B.to(compute)
        low_rank = (2.0 * scale) * (W @ A.T) + (scale * scale) * (B @ (A @ A.T))  # (d_out, r)
        squared = row_norm(W).square() + (B * low_rank).sum(dim=1)
    return squared.clamp_min(0.0).sqrt()  # ≥ 0 up to rounding; clamped for a row that B·A cancels


def _state_key(layer: Any, name: str) -> tuple:
    """What the norm of adapter ``name`` reads, as (address, version, dtype, shape) of A, B and every tensor of the
    base layer: an in-place change bumps a version, a replaced tensor changes the address, dtype or shape."""
    tensors = (layer.lora_A[name], layer.lora_B[name], *layer.base_layer.parameters(), *layer.base_layer.buffers())
    return tuple((t.data_ptr(), t._version, t.dtype, t.shape) for t in tensors)


def layer_direction_norm(layer: Any, name: str, W: torch.Tensor | None = None) -> torch.Tensor:
    """``direction_norm`` of adapter ``name`` on ``layer`` (W: the canonical base weight, read if not given).

    Where no graph is built (evaluation, generation: one forward per token), the norm is kept on the layer and
    reused while A, B and the base are unchanged, instead of forming (d_out, d_in) matrices at every call; it is
    forgotten whenever the layer's ``train``/``eval`` mode is set (``LoraLayer.train``).
    """
    A, B, scale = layer.lora_A[name], layer.lora_B[name], layer.specs[name].scale
    if torch.is_grad_enabled() or torch.compiler.is_compiling():
        return direction_norm(layer.canonical_weight() if W is None else W, A, B, scale)
    key = _state_key(layer, name)
    kept = layer.variant_memos.get(name)
    if kept is not None and kept[0] == key:
        return kept[1]
    norm = direction_norm(layer.canonical_weight() if W is None else W, A, B, scale)
    layer.variant_memos[name] = (key, norm)
    return norm


class Dora(Variant):
    name = "dora"
    config_field = "use_dora"
    file_keys = {"magnitude": "lora_magnitude_vector"}
    low_rank = False

    def parameter_shapes(self, d_in: int, d_out: int) -> dict[str, tuple[int, ...]]:
        return {"magnitude": (d_out,)}

    def init_parameters(self, W: torch.Tensor, delta: torch.Tensor) -> Params:
        return {"magnitude": row_norm(W + delta)}

    def output(self, x: torch.Tensor, base_out: torch.Tensor, layer: Any, name: str) -> torch.Tensor:
        magnitude = layer.variant_params[name]["magnitude"]
        dropout = layer.dropout_p(name)
        W = layer.canonical_weight() if dropout > 0 else None  # (d_out, d_in); the current base weight, as PEFT's
        norm = layer_direction_norm(layer, name, W)
        g = (magnitude / norm).to(base_out.dtype)
        if dropout > 0:
            x = dropout_path.dropout(x, dropout)  # the fused layer's mask (lora/fused_dora.py)
            base_part = F.linear(x.to(W.dtype), W).to(base_out.dtype)
        else:
            bias = layer.base_bias()
            base_part = base_out - bias if bias is not None else base_out
        low_rank = layer.low_rank_output(name, x, dropout=0.0)
        return (g - 1) * base_part + g * low_rank.to(base_out.dtype)

    def merged_weight(self, W: torch.Tensor, delta: torch.Tensor, params: Params) -> tuple[torch.Tensor, torch.Tensor]:
        """W' = m ⊙ (W + ΔL) / ‖W + ΔL‖; the memo is that norm (d_out,), which unmerging needs."""
        direction = W + delta
        norm = row_norm(direction)
        return (params["magnitude"].to(W.dtype) / norm)[:, None] * direction, norm

    def unmerged_weight(self, W_merged: torch.Tensor, delta: torch.Tensor, params: Params, memo: torch.Tensor) -> torch.Tensor:
        """W = W' ⊙ ‖W + ΔL‖ / m − ΔL, with the norm kept at merge time."""
        return W_merged * (memo / params["magnitude"].to(W_merged.dtype))[:, None] - delta
