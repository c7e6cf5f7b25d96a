"""``weight_memory``: bytes held by the base model's weights, quantized and not.

bits/weight of an NF4 layer with n weights, block b = 64 and scale block 256:
    4 (codes) + 8/b (int8 scales) + 32/(b·256) (fp32 second-level scales) ≈ 4.127
(4 + 32/b = 4.5 without double quantization), i.e. ≈ 0.258× bf16 (16 bits).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from loralab.lora.interface import adapter_modules
from loralab.quant.nf4_linear import NF4Linear


@dataclass(frozen=True)
class WeightMemory:
    """The base's weights: NF4-stored ones and the rest (adapter factors and copies excluded)."""

    quantized_params: int  # weights stored in NF4
    quantized_bytes: int  # their codes and scales
    dense_params: int  # every other base parameter (embeddings, norms, head, biases, ...)
    dense_bytes: int

    @property
    def bits_per_quantized_param(self) -> float:
        return 8 * self.quantized_bytes / self.quantized_params if self.quantized_params else 0.0

    @property
    def quantized_vs_bf16(self) -> float:
        """NF4 bytes / the same weights' bytes in bf16."""
        return self.quantized_bytes / (2 * self.quantized_params) if self.quantized_params else 0.0

    @property
    def total_bytes(self) -> int:
        return self.quantized_bytes + self.dense_bytes

    @property
    def total_vs_bf16(self) -> float:
        """All base bytes / every base weight in bf16."""
        params = self.quantized_params + self.dense_params
        return self.total_bytes / (2 * params) if params else 0.0

    def __str__(self) -> str:
        mb = 1 / 2**20
        return (
            f"base weights {self.total_bytes * mb:.1f} MiB ({self.total_vs_bf16:.3f}× bf16): "
            f"NF4 {self.quantized_params / 1e6:.2f}M params in {self.quantized_bytes * mb:.1f} MiB "
            f"({self.bits_per_quantized_param:.3f} bits/param, {self.quantized_vs_bf16:.3f}× bf16), "
            f"dense {self.dense_params / 1e6:.2f}M params in {self.dense_bytes * mb:.1f} MiB"
        )


def weight_memory(model: nn.Module) -> WeightMemory:
    """Count the base's bytes: NF4 codes + scales, and every other parameter once (shared ones once)."""
    adapter_ids = {id(p) for _, m in adapter_modules(model) for name in m.adapter_names() for p in m.adapter_parameters(name)}
    nf4 = {id(m): m for m in model.modules() if isinstance(m, NF4Linear)}
    dense = {id(p): p for p in model.parameters() if id(p) not in adapter_ids}
    return WeightMemory(
        quantized_params=sum(m.quantized_numel for m in nf4.values()),
        quantized_bytes=sum(m.quantized_nbytes() for m in nf4.values()),
        dense_params=sum(p.numel() for p in dense.values()),
        dense_bytes=sum(p.numel() * p.element_size() for p in dense.values()),
    )
