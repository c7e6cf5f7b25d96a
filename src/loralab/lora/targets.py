"""Which modules an adapter goes on, and which LoRA layer wraps each base type.

The dispatch table maps base module types to LoRA wrappers. Layers defined above ``lora``
(``quant.NF4Linear``) add themselves with :func:`register_lora_layer` when their module is
imported, so that ``lora`` never imports them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator

from torch import nn

from loralab.errors import ConfigError, NoTargetsError
from loralab.lora.config import ALL_LINEAR, LoraConfig, matches_selector
from loralab.lora.interface import AdapterModule
from loralab.lora.layers import LoraConv1D, LoraEmbedding, LoraLayer, LoraLinear


def _conv1d_type() -> type | None:
    try:
        from transformers.pytorch_utils import Conv1D
    except ImportError:  # transformers is optional for plain PyTorch models
        return None
    return Conv1D


#: base module type → LoRA wrapper, first match wins (see ``register_lora_layer``)
_DISPATCH: list[tuple[type, type[LoraLayer]]] = [(nn.Linear, LoraLinear), (nn.Embedding, LoraEmbedding)]
if _conv1d_type() is not None:
    _DISPATCH.append((_conv1d_type(), LoraConv1D))


def register_lora_layer(base_type: type, wrapper: type[LoraLayer]) -> None:
    """Let LoRA wrap modules of ``base_type`` (and subclasses) with ``wrapper``; registering again replaces."""
    _DISPATCH[:] = [(t, w) for t, w in _DISPATCH if t is not base_type]
    _DISPATCH.insert(0, (base_type, wrapper))


def lora_layer_type(module: nn.Module) -> type[LoraLayer] | None:
    """The LoRA wrapper for ``module``'s type (None: not supported)."""
    for base_type, wrapper in _DISPATCH:
        if isinstance(module, base_type):
            return wrapper
    return None


def supported_types() -> list[str]:
    """Names of the base types LoRA can wrap (for error messages)."""
    return [base_type.__name__ for base_type, _ in _DISPATCH]


def is_linear(module: nn.Module) -> bool:
    return lora_layer_type(module) in (LoraLinear, LoraConv1D)


@dataclass(frozen=True)
class Target:
    """A module to adapt: its path, the plain module under any wrapper, and its r / scale."""

    path: str
    base: nn.Module
    r: int
    scale: float


def base_modules(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """(path, plain module) for every module, seeing through adapter wrappers, never inside them."""

    def walk(module: nn.Module, prefix: str) -> Iterator[tuple[str, nn.Module]]:
        for name, child in module.named_children():
            path = f"{prefix}.{name}" if prefix else name
            if isinstance(child, AdapterModule):
                yield path, child.base_layer
            else:
                yield path, child
                yield from walk(child, path)

    yield from walk(model, "")


def block_index(path: str) -> int | None:
    """The block a module belongs to: the first integer component of its path."""
    match = re.search(r"(?:^|\.)(\d+)(?:\.|$)", path)
    return int(match.group(1)) if match else None


def output_head_paths(model: nn.Module) -> set[str]:
    """Paths of the output head (excluded by "all-linear"): the model's output embedding, or ``lm_head``."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    found = {path for path, module in base_modules(model) if head is not None and module is head}
    return found or {path for path, _ in base_modules(model) if path.split(".")[-1] == "lm_head"}


def linear_module_names(model: nn.Module) -> list[str]:
    """Distinct last names of the model's linear layers (for error messages)."""
    return sorted({path.split(".")[-1] for path, module in base_modules(model) if is_linear(module)})


def resolve_targets(model: nn.Module, config: LoraConfig) -> list[Target]:
    """The modules ``config`` selects in ``model``, validated: at least one, all of a supported type."""
    heads = output_head_paths(model) if config.target_modules == ALL_LINEAR else set()
    targets, unsupported = [], []
    for path, module in base_modules(model):
        if config.target_modules == ALL_LINEAR:
            selected = is_linear(module) and path not in heads
        else:
            selected = matches_selector(config.target_modules, path)
        if not selected or (config.exclude_modules and matches_selector(config.exclude_modules, path)):
            continue
        if config.layers is not None and block_index(path) not in config.layers:
            continue
        if lora_layer_type(module) is None:
            unsupported.append(f"{path} ({type(module).__name__})")
            continue
        targets.append(Target(path, module, config.rank_for(path), config.scale_for(path)))
    if unsupported:
        raise ConfigError(
            f"target_modules selects modules LoRA cannot wrap (supported: {', '.join(supported_types())}): "
            + ", ".join(unsupported[:8])
            + (" ..." if len(unsupported) > 8 else "")
        )
    if not targets:
        raise NoTargetsError(
            f"target_modules={_show(config.target_modules)} matches no module"
            + (f" in layers {list(config.layers)}" if config.layers is not None else "")
            + f". The model's linear modules are: {', '.join(linear_module_names(model))}"
        )
    return targets


def resolve_modules_to_save(model: nn.Module, config: LoraConfig) -> list[str]:
    """Paths of the modules to copy for ``modules_to_save``; a name matching nothing is an error."""
    if not config.modules_to_save:
        return []
    paths = [path for path, _ in base_modules(model) if matches_selector(config.modules_to_save, path)]
    # Keep outermost matches only (a selected module's children come with it).
    paths = [p for p in paths if not any(p.startswith(q + ".") for q in paths)]
    if not paths:
        names = sorted({p.split(".")[-1] for p, _ in base_modules(model)})
        raise ConfigError(f"modules_to_save={list(config.modules_to_save)} matches no module. Module names: {', '.join(names)}")
    return paths


def _show(selector) -> str:
    return repr(selector) if isinstance(selector, str) else repr(list(selector))


def get_submodule_parent(model: nn.Module, path: str) -> tuple[nn.Module, str]:
    parent_path, _, name = path.rpartition(".")
    return (model.get_submodule(parent_path) if parent_path else model), name


__all__ = [
    "Target",
    "base_modules",
    "block_index",
    "get_submodule_parent",
    "lora_layer_type",
    "resolve_modules_to_save",
    "resolve_targets",
]
