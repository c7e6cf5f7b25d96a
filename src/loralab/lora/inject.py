"""``add_adapter``: put LoRA layers (and trainable copies) into a model, in place."""

from __future__ import annotations

from torch import nn

from loralab.errors import ConfigError
from loralab.lora.config import LoraConfig
from loralab.lora.interface import check_adapter_name
from loralab.lora.layers import AdapterSpec, LoraLayer
from loralab.lora.registry import registry
from loralab.lora.switching import refresh_trainable
from loralab.lora.targets import (
    Target,
    get_submodule_parent,
    lora_layer_type,
    resolve_modules_to_save,
    resolve_targets,
)
from loralab.lora.trainable_copy import TrainableCopy
from loralab.lora.variants import VARIANTS


def add_adapter(model: nn.Module, config: LoraConfig, name: str = "default") -> nn.Module:
    """Add adapter ``name`` to ``model`` in place and return the model.

    Every selected layer is wrapped (or, if already wrapped, given one more adapter) with
    B·A = 0, so outputs are unchanged. The first adapter becomes active; later ones are
    added inactive (switch with ``set_adapter``). Only active adapters train: everything
    else is frozen, except biases chosen by ``config.bias``.
    """
    plan = plan_adapter(model, config, name)
    apply_plan(model, config, name, *plan)
    return model


def plan_adapter(model: nn.Module, config: LoraConfig, name: str) -> tuple[list[Target], list[str]]:
    """Everything ``add_adapter`` will touch, checked before anything changes."""
    if not isinstance(config, LoraConfig):
        raise ConfigError(f"expected a loralab.LoraConfig, got {type(config).__name__}")
    check_adapter_name(name)
    reg = model.__dict__.get("loralab_adapters")
    if reg is not None and name in reg.configs:
        raise ConfigError(f"the model already has an adapter named {name!r}; delete it first or pick another name")
    targets = resolve_targets(model, config)
    variant = VARIANTS[config.variant]
    refused = [f"{t.path} ({type(t.base).__name__})" for t in targets if lora_layer_type(t.base).layout.kind not in variant.layouts]
    if refused:
        raise ConfigError(f"the {variant.name} variant works on {', '.join(variant.layouts)} layers only, not on "
                          f"{', '.join(refused[:5])}; exclude them from target_modules")  # fmt: skip
    return targets, resolve_modules_to_save(model, config)


def apply_plan(model: nn.Module, config: LoraConfig, name: str, targets: list[Target], copies: list[str]) -> None:
    for target in targets:
        layer = _wrapped(model, target.path, lora_layer_type(target.base))
        layer.add(name, AdapterSpec(target.r, target.scale, config.dropout, config.init, config.variant))
    for path in copies:
        _wrapped(model, path, TrainableCopy).add(name)
    reg = registry(model, create=True)
    reg.configs[name] = config
    if not reg.active:
        reg.active = (name,)
    refresh_trainable(model)


def _wrapped(model: nn.Module, path: str, wrapper: type) -> nn.Module:
    """The wrapper at ``path``, creating it around the module there if needed."""
    parent, attr = get_submodule_parent(model, path)
    module = getattr(parent, attr)
    if isinstance(module, wrapper):
        return module
    if isinstance(module, (LoraLayer, TrainableCopy)):
        raise ConfigError(f"{path} is already wrapped as {type(module).__name__}; it cannot also be a {wrapper.__name__}")
    layer = wrapper(module).train(module.training)  # a new wrapper takes the mode of what it wraps (eval: no dropout)
    setattr(parent, attr, layer)
    return layer
