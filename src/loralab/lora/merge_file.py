"""``merge_state_dict``: an adapter folder merged into a plain state dict, with no model built."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import torch

from loralab.errors import AdapterMismatchError
from loralab.lora.delta import compute_dtype, delta_weight
from loralab.lora.io import check_float_like, read_adapter
from loralab.lora.variants import VARIANTS


def merge_state_dict(
    base_state_dict: Mapping[str, torch.Tensor], adapter: str | Path
) -> dict[str, torch.Tensor]:
    """A new state dict with the adapter folder's update merged in; the input is not modified.

    For each adapted module at path p: ``p.weight`` ← the variant's merged weight (plain LoRA:
    W + ΔW with ΔW = ``delta_weight(A, B, scale)``; transposed for embeddings and fan-in-fan-out
    layers), and biases and ``modules_to_save`` weights saved with the adapter replace the base's.
    ``read_adapter`` has refused non-finite and non-float factors; a saved tensor replacing a float
    one must be float too.
    """
    config, modules, extra = read_adapter(adapter)
    variant = VARIANTS[config.lora.variant]
    merged = dict(base_state_dict)
    for path, factors in modules.items():
        key = f"{path}.weight"
        if key not in merged:
            raise AdapterMismatchError(f"the adapter has {path} but the state dict has no {key}")
        A, B = factors.A, factors.B
        r = config.lora.rank_for(path)
        if A.shape[0] != r:
            raise AdapterMismatchError(f"{path}: lora_A has rank {A.shape[0]} but the config gives r={r}")
        W = merged[key]
        canonical = W.T if factors.layout.transposed else W  # (d_out, d_in)
        delta = delta_weight(A, B, config.lora.scale_for(path))
        if tuple(canonical.shape) != tuple(delta.shape):
            raise AdapterMismatchError(f"{path}: update has shape {tuple(delta.shape)} (d_out, d_in) but {key} is {tuple(W.shape)}")
        compute = compute_dtype(W.dtype)
        params = {param: factors.variant_tensors[file_key].to(compute) for param, file_key in variant.file_keys.items()}
        new, _ = variant.merged_weight(canonical.to(compute), delta.to(compute), params)
        merged[key] = (new.T if factors.layout.transposed else new).contiguous().to(W.dtype)
    for key, value in extra.items():
        if key not in merged:
            raise AdapterMismatchError(f"the adapter saves {key}, which the state dict does not have")
        if tuple(merged[key].shape) != tuple(value.shape):
            raise AdapterMismatchError(f"{key}: adapter has {tuple(value.shape)}, state dict has {tuple(merged[key].shape)}")
        check_float_like(adapter, key, value, merged[key])
        merged[key] = value.to(merged[key].dtype)
    return merged
