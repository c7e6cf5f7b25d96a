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
    #: layouts (``FactorLayout.kind``) this variant works on; adding one elsewhere is a ConfigError
    layouts: ClassVar[tuple[str, ...]] = ("linear", "conv1d", "embedding")
    #: whether the merged weight is W + ΔL whatever W is: then the update is its factors' product
    #: (``combine_adapters`` combines it, analysis reads it as low-rank, merge order does not matter)
    low_rank: ClassVar[bool] = True

    def parameter_shapes(self, d_in: int, d_out: int) -> dict[str, tuple[int, ...]]:
        """Shapes of the variant's own parameters."""
        return {}

    def init_parameters(self, W: torch.Tensor, delta: torch.Tensor) -> Params:
        """Initial values of its own parameters, given the base weight W and ΔL at start (both (d_out, d_in), float32 or float64)."""
        return {}

    @abstractmethod
    def output(self, x: torch.Tensor, base_out: torch.Tensor, layer: Any, name: str) -> torch.Tensor:
        """The adapter's contribution to the layer output (added to ``base_out`` = base(x))."""

    @abstractmethod
    def merged_weight(self, W: torch.Tensor, delta: torch.Tensor, params: Params) -> tuple[torch.Tensor, Any]:
        """(W' = W + the variant's ΔW given W, a memo that ``unmerged_weight`` needs); (d_out, d_in), float32 or float64.
        The one function that says what the variant's update is (merge, ``merge_state_dict`` and analysis use it)."""

    @abstractmethod
    def unmerged_weight(self, W_merged: torch.Tensor, delta: torch.Tensor, params: Params, memo: Any) -> torch.Tensor:
        """W back from W' (the inverse of ``merged_weight``)."""
