"""``quantize_base`` / ``dequantize_base``: swap a model's frozen linear layers to NF4 and back."""

from __future__ import annotations

import torch
from torch import nn

from loralab.errors import ConfigError, LoraLabError
from loralab.lora.config import matches_selector
from loralab.lora.layers import LoraLayer
from loralab.lora.switching import refresh_trainable
from loralab.lora.targets import output_head_paths
from loralab.quant.config import QuantConfig
from loralab.quant.nf4_linear import NF4Linear
from loralab.quant.sites import Site, sites_of


def quantize_base(model: nn.Module, config: QuantConfig = QuantConfig()) -> nn.Module:
    """Replace the base's ``nn.Linear`` layers by frozen ``NF4Linear`` ones, in place (also returned).

    Quantized: every nn.Linear, also the base layer of a LoRA wrapper (whose adapters, kept
    as they are, then train on the 4-bit base). Kept: the output head (unless
    ``config.quantize_head``; a head tied to the embeddings is then stored twice, the
    embedding staying dense), ``config.skip_modules``, embeddings, norms, GPT-2's Conv1D
    layers, and modules inside ``modules_to_save`` copies. A layer shared at two paths stays
    shared. Everything is checked before the model changes; raises LoraLabError (ConfigError
    for a block size not dividing a weight) when there is nothing to quantize, a weight is
    not finite, or an adapter is merged into a layer to quantize.
    """
    if not isinstance(config, QuantConfig):
        raise ConfigError(f"expected a loralab.quant.QuantConfig, got {type(config).__name__}")
    heads = set() if config.quantize_head else output_head_paths(model)
    chosen = [s for s in sites_of(model, nn.Linear) if s.path not in heads and not _skipped(config, s.path)]
    if not chosen:
        raise LoraLabError(f"quantize_base found no nn.Linear layer to quantize in this {type(model).__name__}" + _why_none(model, heads))
    for site in chosen:
        _check(site, config)
    done: dict[int, NF4Linear] = {}
    for site in chosen:
        if id(site.module) not in done:
            done[id(site.module)] = NF4Linear.from_linear(site.module, config)
        setattr(site.owner, site.attr, done[id(site.module)])
    _refresh(model)
    return model


def dequantize_base(model: nn.Module, dtype: torch.dtype | None = None) -> nn.Module:
    """Replace every ``NF4Linear`` by an ``nn.Linear`` holding Ŵ, in place (also returned).

    ``dtype``: of the new weights; default each layer's ``weight_dtype``, the dtype of the
    weight it was quantized from (so a bf16 model comes back bf16 and an fp32 one fp32). The
    weights are frozen. Use before ``merge``: adapters then merge into Ŵ in float32, as for
    any dense base.
    """
    found = list(sites_of(model, NF4Linear))
    if not found:
        raise LoraLabError("dequantize_base found no NF4Linear layer in this model (was it quantized with quantize_base?)")
    done: dict[int, nn.Linear] = {}
    for site in found:
        if id(site.module) not in done:
            done[id(site.module)] = _dense(site.module, dtype)
        setattr(site.owner, site.attr, done[id(site.module)])
    _refresh(model)
    return model


def _dense(layer: NF4Linear, dtype: torch.dtype | None) -> nn.Linear:
    dtype = dtype or layer.weight_dtype
    linear = nn.utils.skip_init(nn.Linear, layer.in_features, layer.out_features, bias=False, device=layer.device, dtype=dtype)
    linear.weight = nn.Parameter(layer.dequantize(dtype), requires_grad=False)
    bias = layer.bias
    if bias is not None:
        linear.bias = bias if bias.dtype == dtype else nn.Parameter(bias.detach().to(dtype), requires_grad=bias.requires_grad)
    return linear


def _skipped(config: QuantConfig, path: str) -> bool:
    return config.skip_modules is not None and matches_selector(config.skip_modules, path)


def _check(site: Site, config: QuantConfig) -> None:
    weight = site.module.weight
    if weight.numel() % config.block_size:
        raise ConfigError(
            f"block_size={config.block_size} does not divide the {weight.numel()} elements of {site.path}.weight "
            f"{tuple(weight.shape)}; pick a block size dividing every weight, or skip it with skip_modules"
        )
    if not weight.is_floating_point() or not torch.isfinite(weight).all():
        raise LoraLabError(f"{site.path}.weight is not a finite floating-point tensor; it cannot be quantized")
    if isinstance(site.owner, LoraLayer) and site.owner.merged:
        raise LoraLabError(f"adapter(s) {site.owner.merged} are merged into {site.path}; unmerge before quantize_base")


def _why_none(model: nn.Module, heads: set[str]) -> str:
    already = sum(1 for _ in sites_of(model, NF4Linear))
    if already:
        return f" (it already has {already} NF4Linear layers)"
    if heads:
        return f" (the output head {', '.join(sorted(heads))} is kept unless quantize_head=True; GPT-2's Conv1D layers are not supported)"
    return " (only nn.Linear layers are quantized; GPT-2's Conv1D layers are not supported)"


def _refresh(model: nn.Module) -> None:
    """Re-apply the adapters' trainable set (new layers' biases follow ``config.bias``)."""
    if model.__dict__.get("loralab_adapters") is not None:
        refresh_trainable(model)
