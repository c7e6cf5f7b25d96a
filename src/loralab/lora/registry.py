"""What a model knows about its adapters: their configs and which are active.

Kept as one attribute on the model, so that a model with adapters is still the user's
own model object (no parallel model class).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from loralab.errors import ConfigError
from loralab.lora.config import LoraConfig

_ATTRIBUTE = "loralab_adapters"


@dataclass
class AdapterRegistry:
    configs: dict[str, LoraConfig] = field(default_factory=dict)
    active: tuple[str, ...] = ()


def registry(model: nn.Module, create: bool = False) -> AdapterRegistry:
    """The model's registry; an error if it has no adapters (unless ``create``)."""
    found = model.__dict__.get(_ATTRIBUTE)
    if found is None:
        if not create:
            raise ConfigError("this model has no LoRA adapters; add one with loralab.add_adapter(model, config)")
        found = AdapterRegistry()
        model.__dict__[_ATTRIBUTE] = found
    return found


def drop_registry(model: nn.Module) -> None:
    model.__dict__.pop(_ATTRIBUTE, None)


def require_adapter(model: nn.Module, name: str) -> LoraConfig:
    reg = registry(model)
    if name not in reg.configs:
        raise ConfigError(f"no adapter named {name!r}; this model has: {', '.join(reg.configs) or 'none'}")
    return reg.configs[name]
