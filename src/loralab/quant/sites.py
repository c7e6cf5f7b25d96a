"""Where the layers to (de)quantize sit: the module, its owner and the attribute holding it.

A LoRA layer's ``base_layer`` is a site (the wrapper stays, its base changes); modules
inside other adapter modules (``modules_to_save`` copies, which train in full) are not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from torch import nn

from loralab.lora.interface import AdapterModule
from loralab.lora.layers import LoraLayer


@dataclass(frozen=True)
class Site:
    """``getattr(owner, attr) is module``; ``path`` is the module's path seen through wrappers."""

    path: str
    owner: nn.Module
    attr: str
    module: nn.Module


def sites_of(model: nn.Module, kind: type) -> Iterator[Site]:
    """Every module of type ``kind`` (outermost first, not inside another match)."""

    def walk(owner: nn.Module, prefix: str) -> Iterator[Site]:
        for name, child in owner.named_children():
            path = f"{prefix}.{name}" if prefix else name
            if isinstance(child, LoraLayer):
                if isinstance(child.base_layer, kind):
                    yield Site(path, child, "base_layer", child.base_layer)
            elif isinstance(child, AdapterModule):
                continue
            elif isinstance(child, kind) and not isinstance(owner, nn.MultiheadAttention):  # MHA reads out_proj.weight itself
                yield Site(path, owner, name, child)
            else:
                yield from walk(child, path)

    yield from walk(model, "")
