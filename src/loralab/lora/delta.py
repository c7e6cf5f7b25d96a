"""The LoRA update: the one formula, and the adapter path of the forward pass.

``delta_weight`` is the only place where ΔW is formed; merging, unmerging,
export (``merge_state_dict``) and combination all call it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from loralab.lora.dropout_path import dropout_then_project


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype updates are formed in: float32, or float64 for float64 tensors."""
    return torch.promote_types(dtype, torch.float32)


def delta_weight(A: torch.Tensor, B: torch.Tensor, scale: float, transposed: bool = False) -> torch.Tensor:
    """ΔW = scale · B @ A, computed in float32 or better.

    A: (r, d_in), B: (d_out, r) → (d_out, d_in); with ``transposed`` → (d_in, d_out), the layout
    of weights stored input-major (GPT-2's Conv1D, nn.Embedding's (num_embeddings, dim)).
    """
    compute = compute_dtype(A.dtype)
    delta = (B.to(compute) * scale) @ A.to(compute)  # scale folded into the small (d_out, r) factor
    return delta.T if transposed else delta


def adapter_output(x: torch.Tensor, A: torch.Tensor, B: torch.Tensor, scale: float, dropout: float) -> torch.Tensor:
    """scale · B A dropout(x) for x: (..., d_in) → (..., d_out).

    Saves for backward only x (one tensor however many adapters read it, e.g. q/k/v) and
    the r-wide x·Aᵀ (plus a 1-byte drop mask when dropout > 0); the scale multiplies the
    r-wide activation, never a d_out-wide one.
    """
    if x.dtype != A.dtype and not torch.is_autocast_enabled(x.device.type):
        x = x.to(A.dtype)
    if dropout > 0:
        h = dropout_then_project(x, A, dropout)
    else:
        h = F.linear(x, A)
    return F.linear(h * scale, B)
