"""Choosing which adapters run and train: ``set_adapter``, ``disabled``, ``delete_adapter``."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Sequence

from torch import nn

from loralab.lora.interface import adapter_modules, strip_wrappers
from loralab.lora.layers import LoraLayer
from loralab.lora.registry import drop_registry, registry, require_adapter


def set_adapter(model: nn.Module, names: str | Sequence[str]) -> None:
    """Make these adapters active (their outputs add up) and the only trainable ones.

    Adapters merged into the weights stay merged; unmerge first to switch them off.
    """
    names = (names,) if isinstance(names, str) else tuple(names)
    for name in names:
        require_adapter(model, name)
    registry(model).active = names
    refresh_trainable(model)


def active_adapters(model: nn.Module) -> tuple[str, ...]:
    return registry(model).active


def refresh_trainable(model: nn.Module) -> None:
    """requires_grad follows the active adapters: their factors, copies and chosen biases train."""
    reg = registry(model)
    for param in model.parameters():
        param.requires_grad_(False)
    for _, module in adapter_modules(model):
        module.set_active(reg.active)
        for name in reg.active:
            if name in module.adapter_names():
                for param in module.adapter_parameters(name):
                    param.requires_grad_(True)
    modes = {reg.configs[name].bias for name in reg.active}
    for bias in trainable_biases(model, modes):
        bias.requires_grad_(True)


def trainable_biases(model: nn.Module, modes: set[str]) -> list[nn.Parameter]:
    """Biases that train: every bias for ``"all"``, those of LoRA-wrapped layers for ``"lora_only"``."""
    found: dict[int, nn.Parameter] = {}
    if "all" in modes:
        for module in model.modules():
            if isinstance(getattr(module, "bias", None), nn.Parameter):
                found[id(module.bias)] = module.bias
    if "lora_only" in modes:
        for _, layer in adapter_modules(model):
            bias = getattr(layer.base_layer, "bias", None)
            if isinstance(layer, LoraLayer) and isinstance(bias, nn.Parameter):
                found[id(bias)] = bias
    return list(found.values())


@contextmanager
def disabled(model: nn.Module) -> Iterator[None]:
    """Within the block the model computes as its base: no adapter runs, merged ones are taken out.

    Nests: on exit each block restores what it found (active adapters, merged ones) for the adapters
    that still exist. Adapters added, deleted or activated inside the block are kept: if none of those
    active on entry is left, those active at exit stay active; trainability follows the active set.
    """
    reg = registry(model)
    # each merged adapter by its layer and its A (the same name may be deleted and re-added in the block)
    merged = [(layer, [(n, layer.lora_A[n]) for n in layer.merged]) for _, layer in adapter_modules(model)
              if isinstance(layer, LoraLayer)]  # fmt: skip
    saved_active, saved_names = reg.active, set(reg.configs)
    reg.active = ()
    for _, layer in adapter_modules(model):
        if isinstance(layer, LoraLayer):
            layer.unmerge()
        layer.set_active(())
    try:
        yield
    finally:
        now = model.__dict__.get("loralab_adapters")  # None: every adapter was deleted; another object: re-added
        if now is not None:
            changed = now is not reg or set(now.configs) != saved_names or now.active != ()
            now.active = tuple(n for n in saved_active if n in now.configs) or now.active
            live = {id(layer) for _, layer in adapter_modules(model)}
            for _, layer in adapter_modules(model):
                layer.set_active(now.active)
            for layer, names in merged:
                if id(layer) in live:
                    layer.remerge([n for n, A in names if n in layer.specs and layer.lora_A[n] is A])
            if changed:
                refresh_trainable(model)


def delete_adapter(model: nn.Module, name: str) -> None:
    """Remove adapter ``name`` everywhere (unmerging it first if merged)."""
    require_adapter(model, name)
    for path, module in list(adapter_modules(model)):
        if name in module.adapter_names():
            module.delete(name)
    reg = registry(model)
    del reg.configs[name]
    reg.active = tuple(n for n in reg.active if n != name)
    if not reg.configs:  # no adapters left (none merged: each was unmerged as it went): the plain model again
        drop_registry(model)
        strip_wrappers(model)
    else:
        refresh_trainable(model)
