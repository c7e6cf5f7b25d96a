"""How many parameters train: ``trainable_parameters``."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class ParameterCount:
    trainable: int
    total: int

    @property
    def fraction(self) -> float:
        return self.trainable / self.total if self.total else 0.0

    def __str__(self) -> str:
        return f"trainable {_short(self.trainable)} / {_short(self.total)} ({100 * self.fraction:.2f}%)"


def _short(n: int) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return str(n)


def trainable_parameters(model: nn.Module, verbose: bool = True) -> ParameterCount:
    """Count trainable and all parameters (shared tensors once) and print e.g.
    ``trainable 4.88M / 139.40M (3.50%)``. Weights of quantized layers (``NF4Linear``, held in
    buffers) count in the total: a module's ``quantized_numel``, if it has one, is added."""
    seen: dict[int, nn.Parameter] = {}
    for param in model.parameters():
        seen.setdefault(id(param), param)
    quantized = {id(m): getattr(m, "quantized_numel", 0) for m in model.modules()}
    count = ParameterCount(
        trainable=sum(p.numel() for p in seen.values() if p.requires_grad),
        total=sum(p.numel() for p in seen.values()) + sum(quantized.values()),
    )
    if verbose:
        print(count)
    return count
