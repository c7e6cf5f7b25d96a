"""The model a recipe trains: the base loaded and made trainable by the recipe's method
(:mod:`loralab.train.methods`), then what every method shares: dropout in the model,
gradient checkpointing or lean activations, and compiled decoder layers.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from loralab.errors import ConfigError
from loralab.models.blocks import decoder_layers
from loralab.models.head import HeadLoss
from loralab.models.lean_activations import enable_lean_activations

if TYPE_CHECKING:
    from loralab.train.recipe import Recipe

#: last path components of the sub-layers whose outputs get ``model.dropout``
DROPOUT_SITES = ("self_attn", "attn", "attention", "mlp")


def base_model(recipe: Recipe) -> tuple[nn.Module, Any]:
    """(model, tokenizer) of the recipe's base, on its device, as its method wants it (NF4 for ``qlora``)."""
    return recipe.training_method.load_base(recipe)


def make_trainable(model: nn.Module, recipe: Recipe) -> nn.Module:
    """Apply the method (adapter, or every weight), then model dropout, gradient checkpointing, Liger's kernels
    or (the default, uncompiled) lean activations, and compiled layers."""
    recipe.training_method.make_trainable(model, recipe)
    if recipe.model.dropout > 0:
        add_output_dropout(model, recipe.model.dropout)
    if recipe.train.gradient_checkpointing:
        # non-reentrant: works with a frozen input embedding; transformers ≥ 5 names it activation checkpointing
        if hasattr(model, "activation_checkpointing_enable"):
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        elif hasattr(model, "gradient_checkpointing_enable"):
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        else:
            raise ConfigError("train.gradient_checkpointing: this model does not support it")
    if recipe.train.liger_kernels:  # Liger's RMSNorm and SwiGLU in place of the lean ones
        from loralab.models.liger import use_liger_kernels

        use_liger_kernels(model)
    elif recipe.train.lean_activations and not (recipe.train.gradient_checkpointing or recipe.train.compile):
        enable_lean_activations(model)  # (compiled, the compiler chooses what backward keeps)
    if recipe.train.compile:
        compile_layers(model)
    model.train()
    return model


def head_loss_for(recipe: Recipe) -> HeadLoss | None:
    """The fused output head + cross-entropy of the run: Liger's with ``train.liger_kernels``, else None (loralab's)."""
    if not recipe.train.liger_kernels:
        return None
    from loralab.models.liger import liger_linear_cross_entropy

    return liger_linear_cross_entropy


#: torch.compile's backend for ``train.compile`` (inductor: generated Triton kernels on GPUs, C++ on CPUs)
COMPILE_BACKEND = "inductor"


def compile_layers(model: nn.Module) -> int:
    """``torch.compile`` every decoder layer in place (``nn.Module.compile``: parameter names and the state dict
    stay as they are, so checkpoints, adapters and FSDP see the same model); returns how many. The layers share
    their code, so one compilation serves all of them; each is compiled when first called."""
    layers = decoder_layers(model)
    if not layers:
        raise ConfigError(f"train.compile: compiles each decoder layer, and {type(model).__name__} names none "
                          f"(no _no_split_modules); set train.compile: false")  # fmt: skip
    for layer in layers:
        layer.compile(backend=COMPILE_BACKEND)
    return len(layers)


def add_output_dropout(model: nn.Module, p: float) -> int:
    """Dropout(p) on the output of every attention and MLP sub-layer while training; returns how many."""

    def hook(module: nn.Module, args: Any, output: Any) -> Any:
        if not module.training:
            return output
        if isinstance(output, tuple):
            return (F.dropout(output[0], p, True),) + tuple(output[1:])
        return F.dropout(output, p, True)

    count = 0
    for path, module in model.named_modules():
        if path.rsplit(".", 1)[-1] in DROPOUT_SITES and any(part.isdigit() for part in path.split(".")):
            module.register_forward_hook(hook)
            count += 1
    return count


def trainable_named_parameters(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """(name, parameter) of every parameter that trains, each once (tied weights counted once)."""
    return [(name, p) for name, p in model.named_parameters() if p.requires_grad]


def autocast(precision: str, device: torch.device):
    """bf16 autocast for precision ``bf16``, a no-op context for ``fp32``."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
