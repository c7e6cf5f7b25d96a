"""Scaling rules and init schemes: how the update is scaled, how A and B start (tables, one entry each).

A variant is a value in one of these tables, never an ``if`` inside a layer.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

ScalingRule = Callable[[float, int], float]
InitScheme = Callable[[torch.Tensor, torch.Tensor], None]

#: scale(alpha, r). LoRA (Hu et al. 2021): alpha / r. rsLoRA (Kalajdzievski 2023): alpha / sqrt(r),
#: which keeps the update's magnitude stable as r grows, so that high ranks keep learning.
SCALING_RULES: dict[str, ScalingRule] = {
    "lora": lambda alpha, r: alpha / r,
    "rslora": lambda alpha, r: alpha / math.sqrt(r),
}


@torch.no_grad()
def _kaiming_uniform(A: torch.Tensor, B: torch.Tensor) -> None:
    """A ~ U(-b, b) with Kaiming's bound for fan_in = d_in (a = sqrt 5, as nn.Linear and PEFT); B = 0."""
    nn.init.kaiming_uniform_(A, a=math.sqrt(5))
    nn.init.zeros_(B)


@torch.no_grad()
def _gaussian(A: torch.Tensor, B: torch.Tensor) -> None:
    """A ~ N(0, 1/r²) (the LoRA paper's random Gaussian A, PEFT's ``"gaussian"``); B = 0."""
    nn.init.normal_(A, std=1.0 / A.shape[0])
    nn.init.zeros_(B)


#: init(A, B) in place, A: (r, d_in), B: (d_out, r). Every scheme leaves B·A = 0,
#: so the adapted model starts equal to the base.
INIT_SCHEMES: dict[str, InitScheme] = {
    "kaiming": _kaiming_uniform,
    "gaussian": _gaussian,
}
