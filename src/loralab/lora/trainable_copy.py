"""``modules_to_save``: a full trainable copy of a module per adapter (e.g. ``lm_head``)."""

from __future__ import annotations

import copy
from typing import Sequence

import torch
from torch import nn

from loralab.lora.interface import AdapterModule


class TrainableCopy(nn.Module, AdapterModule):
    """Runs the active adapter's own copy of ``base_layer``, or the original when none is active."""

    def __init__(self, base_layer: nn.Module) -> None:
        super().__init__()
        self.base_layer = base_layer
        self.copies = nn.ModuleDict()
        self.active: str | None = None

    def add(self, name: str) -> None:
        """A deep copy of the original (its weights untied from anything they were tied to)."""
        duplicate = copy.deepcopy(self.base_layer)
        for param in duplicate.parameters():
            param.requires_grad_(True)
        self.copies[name] = duplicate

    def adapter_names(self) -> list[str]:
        return list(self.copies)

    def set_active(self, names: Sequence[str]) -> None:
        held = [n for n in names if n in self.copies]
        self.active = held[0] if held else None

    def adapter_parameters(self, name: str) -> list[nn.Parameter]:
        return list(self.copies[name].parameters())

    def adapter_state(self, name: str) -> dict[str, torch.Tensor]:
        return {key: value.detach() for key, value in self.copies[name].state_dict().items()}

    def expected_shapes(self, name: str) -> dict[str, tuple[int, ...]]:
        return {key: tuple(value.shape) for key, value in self.base_layer.state_dict().items()}

    @torch.no_grad()
    def load_adapter_state(self, name: str, tensors: dict[str, torch.Tensor]) -> None:
        self.copies[name].load_state_dict(tensors)

    def delete(self, name: str) -> None:
        del self.copies[name]
        if self.active == name:
            self.active = None

    def unwrap(self) -> nn.Module:
        """The active copy if there is one (its training is kept), else the original."""
        return self.copies[self.active] if self.active is not None else self.base_layer

    def forward(self, *args, **kwargs):
        module = self.copies[self.active] if self.active is not None else self.base_layer
        return module(*args, **kwargs)
