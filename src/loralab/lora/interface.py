"""The interface through which model-level functions find and drive adapters.

Anything that holds per-adapter state inside a model — a LoRA layer, a trainable copy
(``modules_to_save``) — is an :class:`AdapterModule`. Saving, switching, deleting and
counting walk the model for this interface; nothing looks for ``"lora_"`` in names.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Iterator, Sequence

import torch
from torch import nn

from loralab.errors import ConfigError

#: names that nn.ParameterDict / nn.ModuleDict (which hold adapters by name) cannot take as keys
_RESERVED = frozenset(dir(nn.ParameterDict())) | frozenset(dir(nn.ModuleDict()))


def check_adapter_name(name: object) -> str:
    """``name`` if it can name an adapter, else ConfigError (the one check, wherever a new name is given).

    Adapters are keys of ParameterDicts, so they become parameter paths (``...lora_A.<name>``): a name
    must be a non-empty string without dots, and not an attribute of the dict (``training``, ``keys``).
    """
    if not isinstance(name, str) or not name or "." in name or name in _RESERVED:
        raise ConfigError(f"invalid adapter name {name!r}: use a non-empty string without dots that is not a "
                          "torch.nn.Module attribute such as 'training' or 'keys' (e.g. 'default', 'math_v2')")  # fmt: skip
    return name


class AdapterModule(ABC):
    """A module that wraps ``base_layer`` and holds named adapters of its own."""

    base_layer: nn.Module

    @abstractmethod
    def adapter_names(self) -> list[str]:
        """Names of the adapters this module holds."""

    @abstractmethod
    def set_active(self, names: Sequence[str]) -> None:
        """Use these adapters in forward (empty: the base layer alone)."""

    @abstractmethod
    def adapter_parameters(self, name: str) -> list[nn.Parameter]:
        """The trainable parameters of one adapter."""

    @abstractmethod
    def adapter_state(self, name: str) -> dict[str, torch.Tensor]:
        """One adapter's tensors, keyed as in a PEFT file relative to this module's path."""

    @abstractmethod
    def expected_shapes(self, name: str) -> dict[str, tuple[int, ...]]:
        """Shapes ``load_adapter_state`` accepts for this adapter, by the same keys."""

    @abstractmethod
    def load_adapter_state(self, name: str, tensors: dict[str, torch.Tensor]) -> None:
        """Copy tensors (shapes already checked) into one adapter."""

    @abstractmethod
    def delete(self, name: str) -> None:
        """Remove one adapter."""

    @abstractmethod
    def unwrap(self) -> nn.Module:
        """The plain module to put back in the model (merged adapters stay in its weights)."""


def adapter_modules(model: nn.Module) -> Iterator[tuple[str, AdapterModule]]:
    """(path, module) for every AdapterModule in the model, outermost first."""
    for path, module in model.named_modules():
        if isinstance(module, AdapterModule):
            yield path, module


def strip_wrappers(model: nn.Module) -> nn.Module:
    """Replace every AdapterModule by ``unwrap()`` (in place; also returned).

    What stays in the weights is whatever is merged at that moment: call ``merge`` or ``unmerge``
    first (``loralab.unload`` does).
    """
    for path, module in list(adapter_modules(model)):
        parent_path, _, attr = path.rpartition(".")
        parent = model.get_submodule(parent_path) if parent_path else model
        setattr(parent, attr, module.unwrap())
    return model
