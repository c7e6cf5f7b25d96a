"""Optimisers over a model's trainable parameters: AdamW or SGD, weight decay, LoRA+.

Parameter groups:
- matrices (dim ≥ 2) get ``weight_decay``; biases and norm weights (dim < 2) get none;
- LoRA+ (Hayou et al. 2024): the B factors of LoRA layers learn ``loraplus_ratio`` times faster
  than A (B is found through the LoRA layers, not by parameter names).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import torch
from torch import nn

from loralab.errors import ConfigError
from loralab.lora.interface import adapter_modules
from loralab.lora.layers import LoraLayer
from loralab.train.schema import check_fields

OPTIMIZERS = ("adamw", "sgd")


Beta = Annotated[float, "[0, 1)"]


@dataclass(frozen=True)
class OptimizerConfig:
    """What optimises: ``name`` (adamw | sgd), lr, AdamW's betas/eps, SGD's momentum, weight decay, LoRA+ ratio.
    ``implementation``: how AdamW runs — ``fused`` (one kernel for every parameter's update, PyTorch's
    ``fused=True``), ``foreach`` (a few batched kernels per update), ``auto`` (fused on CUDA, foreach on CPU:
    the same update to float rounding).

    The ranges (see :mod:`loralab.train.schema`) are far wider than any working setting; they
    stop a typo (``lr: 1e30``) or an infinity before it writes NaN weights.
    """

    name: str = "adamw"
    implementation: Literal["auto", "fused", "foreach"] = "auto"  # AdamW's kernels; auto: fused on cuda
    lr: Annotated[float, "(0, 10]"] = 2e-4
    betas: tuple[Beta, Beta] = (0.9, 0.999)
    eps: Annotated[float, "(0, 1]"] = 1e-8
    momentum: Annotated[float, "[0, 1)"] = 0.9
    weight_decay: Annotated[float, "[0, 10]"] = 0.0
    loraplus_ratio: Annotated[float, "(0, 1000]"] = 1.0

    def __post_init__(self) -> None:
        check_fields(self)
        if self.name not in OPTIMIZERS:
            raise ConfigError(f"optimizer must be one of {list(OPTIMIZERS)}, got {self.name!r}")


def parameter_groups(model: nn.Module, config: OptimizerConfig) -> list[dict]:
    """Trainable parameters split into (decay?, LoRA B?) groups, each with its lr and weight decay."""
    b_factors = {id(p) for _, layer in adapter_modules(model) if isinstance(layer, LoraLayer) for p in layer.b_factors()}
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    seen: set[int] = set()
    for param in model.parameters():
        if not param.requires_grad or id(param) in seen:
            continue
        seen.add(id(param))
        groups.setdefault((param.dim() >= 2, id(param) in b_factors), []).append(param)
    if not groups:
        raise ConfigError("the model has no trainable parameters")
    return [
        {
            "params": params,
            "lr": config.lr * (config.loraplus_ratio if is_b else 1.0),
            "weight_decay": config.weight_decay if decays else 0.0,
        }
        for (decays, is_b), params in groups.items()
    ]


def build_optimizer(model: nn.Module, config: OptimizerConfig) -> torch.optim.Optimizer:
    groups = parameter_groups(model, config)
    if config.name == "adamw":
        on_cuda = groups[0]["params"][0].device.type == "cuda"
        fused = config.implementation == "fused" or (config.implementation == "auto" and on_cuda)
        kernels = {"fused": True} if fused else {"foreach": True}
        return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas, eps=config.eps, **kernels)
    return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum)
