"""Merging adapters into the weights of a live model, and taking them out (``unload``: the plain model).

Merging an adapter folder into a plain state dict, with no model: :mod:`loralab.lora.merge_file`.
"""

from __future__ import annotations

from typing import Sequence

from torch import nn

from loralab.lora.interface import adapter_modules, strip_wrappers
from loralab.lora.layers import LoraLayer
from loralab.lora.registry import drop_registry, registry, require_adapter


def merge(model: nn.Module, names: str | Sequence[str] | None = None) -> None:
    """W ← W + ΔW for the active adapters (or ``names``); idempotent.

    A merged layer computes only its base layer, so inference costs what the base model costs.
    """
    names = _names(model, names)
    layers = [layer for _, layer in adapter_modules(model) if isinstance(layer, LoraLayer)]
    for layer in layers:  # all checks first: a quantized base refuses, before any layer has changed
        if any(n in layer.specs and n not in layer.merged for n in names):
            layer.merged_weight()
    for layer in layers:
        layer.merge(names)


merge_active = merge  # ``unload``'s parameter ``merge`` shadows the function there


def unmerge(model: nn.Module) -> None:
    """Take every merged adapter back out of the weights; idempotent."""
    for _, layer in adapter_modules(model):
        if isinstance(layer, LoraLayer):
            layer.unmerge()


def unload(model: nn.Module, merge: bool = True) -> nn.Module:
    """The plain model, every wrapper replaced by its base module (in place, also returned).

    With ``merge`` the active adapters are merged first, so the result computes what the
    adapted model computed; without it, the base model comes back (trainable copies of
    ``modules_to_save`` are kept only when merging).
    """
    if merge and model.__dict__.get("loralab_adapters") is not None:
        merge_active(model)
    else:
        unmerge(model)
    if not merge:
        for _, module in adapter_modules(model):
            if not isinstance(module, LoraLayer):
                module.set_active(())  # a trainable copy unwraps to the original
    strip_wrappers(model)
    drop_registry(model)
    return model


def _names(model: nn.Module, names: str | Sequence[str] | None) -> tuple[str, ...]:
    if names is None:
        return registry(model).active
    names = (names,) if isinstance(names, str) else tuple(names)
    for name in names:
        require_adapter(model, name)
    return names
