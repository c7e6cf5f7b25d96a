"""Plain LoRA (Hu et al. 2021): y = W x + scale·B A dropout(x); merged W' = W + ΔL."""

from __future__ import annotations

from typing import Any

import torch

from loralab.lora.variants.base import Params, Variant


class PlainLora(Variant):
    name = "lora"

    def output(self, x: torch.Tensor, base_out: torch.Tensor, layer: Any, name: str) -> torch.Tensor:
        return layer.low_rank_output(name, x)

    def merged_weight(self, W: torch.Tensor, delta: torch.Tensor, params: Params) -> tuple[torch.Tensor, None]:
        return W + delta, None

    def unmerged_weight(self, W_merged: torch.Tensor, delta: torch.Tensor, params: Params, memo: Any) -> torch.Tensor:
        return W_merged - delta
