"""Merging adapters into weights: in a live model, out of it, and over a plain state dict."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import torch
from torch import nn

from loralab.errors import AdapterMismatchError
from loralab.lora.delta import delta_weight
from loralab.lora.interface import adapter_modules
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
    for path, module in list(adapter_modules(model)):
        if not isinstance(module, LoraLayer) and not merge:
            module.set_active(())
        parent_path, _, attr = path.rpartition(".")
        parent = model.get_submodule(parent_path) if parent_path else model
        setattr(parent, attr, module.unwrap())
    drop_registry(model)
    return model


def _names(model: nn.Module, names: str | Sequence[str] | None) -> tuple[str, ...]:
    if names is None:
        return registry(model).active
    names = (names,) if isinstance(names, str) else tuple(names)
    for name in names:
        require_adapter(model, name)
    return names


def merge_state_dict(
    base_state_dict: Mapping[str, torch.Tensor], adapter: str | Path
) -> dict[str, torch.Tensor]:
    """A new state dict with the adapter folder's update merged in; the input is not modified.

    For each adapted module at path p: ``p.weight`` ← W + ΔW with ΔW = ``delta_weight(A, B,
    scale)`` (transposed for embeddings and fan-in-fan-out layers), and biases and
    ``modules_to_save`` weights saved with the adapter replace the base's.
    """
    from loralab.lora.io import read_adapter  # io imports this module's siblings

    config, modules, extra = read_adapter(adapter)
    merged = dict(base_state_dict)
    for path, factors in modules.items():
        key = f"{path}.weight"
        if key not in merged:
            raise AdapterMismatchError(f"the adapter has {path} but the state dict has no {key}")
        A, B = factors.A, factors.B
        r = config.lora.rank_for(path)
        if A.shape[0] != r:
            raise AdapterMismatchError(f"{path}: lora_A has rank {A.shape[0]} but the config gives r={r}")
        transposed = factors.embedding or config.fan_in_fan_out
        W = merged[key]
        delta = delta_weight(A, B, config.lora.scale_for(path), transposed)
        if tuple(W.shape) != tuple(delta.shape):
            raise AdapterMismatchError(f"{path}: update has shape {tuple(delta.shape)} but {key} is {tuple(W.shape)}")
        merged[key] = (W.to(torch.float32) + delta).to(W.dtype)
    for key, value in extra.items():
        if key not in merged:
            raise AdapterMismatchError(f"the adapter saves {key}, which the state dict does not have")
        if tuple(merged[key].shape) != tuple(value.shape):
            raise AdapterMismatchError(f"{key}: adapter has {tuple(value.shape)}, state dict has {tuple(merged[key].shape)}")
        merged[key] = value.to(merged[key].dtype)
    return merged
