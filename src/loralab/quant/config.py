"""``QuantConfig``: how ``quantize_base`` stores the frozen base, validated on construction."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch

from loralab.errors import ConfigError
from loralab.lora.config import _as_names

COMPUTE_DTYPES = {"bfloat16": torch.bfloat16, "float32": torch.float32}


@dataclass(frozen=True)
class QuantConfig:
    """NF4 storage of the base's linear layers (QLoRA, Dettmers et al. 2023).

    - ``block_size``: weights per absmax scale (64); must be even and divide the number of
      elements of every quantized weight (blocks run over the flattened weight, across rows).
    - ``double_quant``: store the scales as int8 in blocks of ``scale_block_size`` (256) plus
      one fp32 constant per block and their mean (≈ 4.127 bits/weight in all), instead of
      fp32 scales (4.5 bits/weight).
    - ``compute_dtype``: "bfloat16" or "float32", the dtype the weight is dequantized to for
      the matmul (under autocast, the autocast dtype is used instead).
    - ``quantize_head``: also quantize the output head (``lm_head``), kept as is by default.
    - ``skip_modules``: module names (matched on the path's last components) or a regex over
      the full path, left unquantized.
    """

    block_size: int = 64
    double_quant: bool = True
    scale_block_size: int = 256
    compute_dtype: str = "bfloat16"
    quantize_head: bool = False
    skip_modules: str | tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        _check_size(self.block_size, "block_size")
        if self.block_size % 2:
            raise ConfigError(f"block_size must be even (two 4-bit codes share a byte), got {self.block_size}")
        _check_size(self.scale_block_size, "scale_block_size")
        for name in ("double_quant", "quantize_head"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if self.compute_dtype not in COMPUTE_DTYPES:
            raise ConfigError(f"compute_dtype must be one of {list(COMPUTE_DTYPES)}, got {self.compute_dtype!r}")
        object.__setattr__(self, "skip_modules", _as_names(self.skip_modules, "skip_modules"))

    @property
    def torch_compute_dtype(self) -> torch.dtype:
        return COMPUTE_DTYPES[self.compute_dtype]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values (tuples as lists)."""
        out = dataclasses.asdict(self)
        if isinstance(out["skip_modules"], tuple):
            out["skip_modules"] = list(out["skip_modules"])
        return out


def _check_size(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
