"""What a LoRA variant is: its own parameters, its forward contribution, its merged weight, its file tensors.

Every variant keeps the factors A: (r, d_in) and B: (d_out, r) with ΔL = scale·B·A
(``loralab.lora.delta``) and may add parameters of its own (DoRA: a magnitude (d_out,)).
Weights here are in the canonical layout W: (d_out, d_in); the layer transposes for input-major
bases. A variant never holds state: the layer passes it the tensors.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch

#: a variant's own tensors of one adapter, by parameter name
Params = dict[str, torch.Tensor]


class Variant(ABC):
    name: ClassVar[str]
    #: the LoraConfig field (and adapter_config.json key) that selects this variant; None: the default
    config_field: ClassVar[str | None] = None
    #: parameter name → its key in a PEFT adapter file (relative to the module path)
    file_keys: ClassVar[dict[str, str]] = {}
    #: layouts (``FactorLayout.kind``) this variant works on
    layouts: ClassVar[tuple[str, ...]] = ("linear", "conv1d", "embedding")

    def parameter_shapes(self, d_in: int, d_out: int) -> dict[str, tuple[int, ...]]:
        """Shapes of the variant's own parameters."""
        return {}

    def init_parameters(self, W: torch.Tensor, delta: torch.Tensor) -> Params:
        """Initial values of its own parameters, given the base weight W and ΔL at start (both (d_out, d_in), float32)."""
        return {}

    @abstractmethod
    def output(self, x: torch.Tensor, base_out: torch.Tensor, layer: Any, name: str) -> torch.Tensor:
        """The adapter's contribution to the layer output (added to ``base_out`` = base(x))."""

    @abstractmethod
    def merged_weight(self, W: torch.Tensor, delta: torch.Tensor, params: Params) -> tuple[torch.Tensor, Any]:
        """(W' that computes base + adapter, a memo that ``unmerged_weight`` needs); float32, (d_out, d_in)."""

    @abstractmethod
    def unmerged_weight(self, W_merged: torch.Tensor, delta: torch.Tensor, params: Params, memo: Any) -> torch.Tensor:
        """W back from W' (the inverse of ``merged_weight``)."""

    combinable: ClassVar[bool] = True
