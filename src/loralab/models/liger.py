"""Liger Kernel's Triton kernels in a Llama-family model: RMSNorm, RoPE and SwiGLU (``train.liger_kernels``).

Liger (``pip install liger-kernel``, extra ``loralab[gpu]``) replaces, in this model instance, each RMSNorm's
and MLP's forward with its fused kernels (the MLP still calls its own ``gate_proj``/``up_proj``/``down_proj``, so
LoRA layers there keep working), and transformers' Llama ``apply_rotary_pos_emb`` with its own (module-wide:
every Llama model of the process). The output head and the cross-entropy run as Liger's fused linear +
cross-entropy (:func:`liger_linear_cross_entropy`) on the labelled positions only, in place of loralab's
blocks of rows (:mod:`loralab.models.head_loss`). Triton kernels: CUDA only.
"""

from __future__ import annotations

import importlib.util

import torch
from torch import nn

from loralab.errors import ConfigError

#: model types Liger's Llama patch fits (SmolLM2 is a Llama)
LLAMA_TYPES = ("llama",)
PACKAGE = "liger-kernel"


def check_liger(device: str) -> None:
    """ConfigError unless Liger can run here: installed, and the run on CUDA."""
    if not device.startswith("cuda"):
        raise ConfigError(f"train.liger_kernels: Liger's kernels are Triton kernels for CUDA GPUs, and train.device is "
                          f"{device}; set train.liger_kernels: false")  # fmt: skip
    if importlib.util.find_spec("liger_kernel") is None:
        raise ConfigError(f"train.liger_kernels needs the '{PACKAGE}' package, which is not installed: "
                          f"pip install {PACKAGE} (or loralab[gpu])")  # fmt: skip


def use_liger_kernels(model: nn.Module) -> None:
    """Liger's RMSNorm, RoPE and SwiGLU in ``model`` (a Llama-family transformers model), in place."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type not in LLAMA_TYPES:
        raise ConfigError(f"train.liger_kernels: loralab applies Liger to Llama-family models, and this one is "
                          f"{model_type or type(model).__name__}; set train.liger_kernels: false")  # fmt: skip
    from liger_kernel.transformers import apply_liger_kernel_to_llama

    apply_liger_kernel_to_llama(rope=True, rms_norm=True, swiglu=True, cross_entropy=False,
                                fused_linear_cross_entropy=False, model=model)  # fmt: skip


def liger_linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                               targets: torch.Tensor) -> torch.Tensor:  # fmt: skip
    """Σ_i cross-entropy(W h_i + b, y_i) by Liger's fused linear + cross-entropy, for hidden (N, d), weight (V, d),
    targets (N,): a float32 scalar, as :func:`loralab.models.head_loss.linear_cross_entropy` gives. Under autocast
    the product runs in the autocast dtype (h, W, b cast to it, as the head's own matmul would be)."""
    from liger_kernel.transformers.functional import liger_fused_linear_cross_entropy

    device_type = hidden.device.type
    if not torch.is_autocast_enabled(device_type):
        return liger_fused_linear_cross_entropy(hidden, weight, targets, bias, reduction="sum").float()
    dtype = torch.get_autocast_dtype(device_type)
    with torch.autocast(device_type, enabled=False):
        cast_bias = None if bias is None else bias.to(dtype)
        return liger_fused_linear_cross_entropy(hidden.to(dtype), weight.to(dtype), targets, cast_bias, reduction="sum").float()
