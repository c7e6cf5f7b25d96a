"""Frozen base weights held in the dtype autocast computes them in.

Under bf16 autocast a float32 ``nn.Linear`` weight is cast to bf16 at every forward, and the cast
copy is what the matmul's backward keeps (to form the input's gradient): per step, a bf16 copy of
every frozen weight, on top of the float32 original. Storing the frozen weight in bf16 instead
gives the same forward bit for bit (the cast rounds exactly as storing does) with half the weight
bytes and no copies. Only base layers of LoRA layers whose adapters are all plain low-rank ones are
touched: a variant that reads W itself (DoRA's column norms) would see the rounded W.
"""

from __future__ import annotations

from collections import Counter

import torch
from torch import nn

from loralab.lora.layers import LoraLayer


def hold_frozen_base_in(model: nn.Module, dtype: torch.dtype) -> int:
    """Store the frozen ``nn.Linear`` bases of the model's LoRA layers in ``dtype``; returns the bytes saved.

    Skipped: a base whose weight trains, is shared with another module (a tied head), is already
    narrower, is not exactly ``nn.Linear`` (NF4, Conv1D), or sits under a variant that is not low-rank.
    Use only while every forward of the model runs under autocast to ``dtype``.
    """
    uses = Counter(id(p) for m in model.modules() for p in m.parameters(recurse=False))
    saved = 0
    for layer in model.modules():
        if not isinstance(layer, LoraLayer) or type(layer.base_layer) is not nn.Linear:
            continue
        if not all(layer.variant(name).low_rank for name in layer.specs):
            continue
        base = layer.base_layer
        tensors = [t for t in (base.weight, base.bias) if t is not None]
        if any(t.requires_grad or uses[id(t)] > 1 or t.element_size() <= torch.finfo(dtype).bits // 8 for t in tensors):
            continue
        before = sum(t.numel() * t.element_size() for t in tensors)
        base.to(dtype)
        saved += before - sum(t.numel() * t.element_size() for t in tensors)
    return saved
