"""``NF4Linear``: a frozen linear layer whose weight is stored in 4-bit NormalFloat.

Storage for a weight W (d_out, d_in) with n = d_out·d_in elements and block size b:
    codes          (n/2,)           uint8    two NF4 codes per byte       (``blockwise.py``)
and the first-level scales (one absmax per block), either
    absmax         (n/b,)           float32                               (no double quant)
or double-quantized (``double_quant.py``)
    absmax_codes   (n/b,)           int8
    absmax_scale   (⌈n/(b·256)⌉,)   float32
    absmax_mean    ()               float32
plus the bias, kept as it was (a frozen parameter). Everything but the bias is a buffer:
no parameter of this layer trains. Forward: y = x Ŵᵀ + bias with Ŵ dequantized to the
compute dtype (the autocast dtype under autocast), the output in x's dtype (the autocast
dtype under autocast).
"""

from __future__ import annotations

import torch
from torch import nn

from loralab.errors import ConfigError
from loralab.lora.layers import LoraLinear
from loralab.lora.targets import register_lora_layer
from loralab.quant.blockwise import dequantize_nf4, quantize_nf4
from loralab.quant.config import QuantConfig
from loralab.quant.double_quant import dequantize_scales, quantize_scales
from loralab.quant.fused_dequant import dequantize_nf4_fused
from loralab.quant.library_dequant import dequantize_nf4_bitsandbytes
from loralab.quant.matmul import NF4Matmul

_FLOAT32_STATE = ("absmax", "absmax_scale", "absmax_mean")


class NF4Linear(nn.Module):
    """A frozen nn.Linear replacement holding its weight in NF4 (see the module docstring)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        config: QuantConfig = QuantConfig(),
        weight_dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        numel = in_features * out_features
        if numel % config.block_size:
            raise ConfigError(
                f"block_size={config.block_size} does not divide the weight's {numel} elements ({out_features}×{in_features})"
            )
        self.in_features, self.out_features = in_features, out_features
        self.block_size, self.scale_block_size = config.block_size, config.scale_block_size
        self.double_quant = config.double_quant
        self.compute_dtype = config.torch_compute_dtype
        #: the dtype of the dense weight this layer was made from (``dequantize_base``'s default)
        self.weight_dtype = weight_dtype
        blocks = numel // config.block_size
        self.register_buffer("codes", torch.zeros(numel // 2, dtype=torch.uint8, device=device))
        if config.double_quant:
            scale_blocks = -(-blocks // config.scale_block_size)
            self.register_buffer("absmax_codes", torch.zeros(blocks, dtype=torch.int8, device=device))
            self.register_buffer("absmax_scale", torch.zeros(scale_blocks, dtype=torch.float32, device=device))
            self.register_buffer("absmax_mean", torch.zeros((), dtype=torch.float32, device=device))
        else:
            self.register_buffer("absmax", torch.zeros(blocks, dtype=torch.float32, device=device))
        self.bias = nn.Parameter(torch.zeros(out_features, dtype=weight_dtype, device=device), requires_grad=False) if bias else None

    @classmethod
    @torch.no_grad()
    def from_linear(cls, linear: nn.Linear, config: QuantConfig = QuantConfig()) -> "NF4Linear":
        """The NF4 version of ``linear``; its bias (the same Parameter object) is kept and frozen."""
        weight = linear.weight
        layer = cls(linear.in_features, linear.out_features, False, config, weight.dtype, device="meta")  # placeholders
        layer.codes, absmax = quantize_nf4(weight, config.block_size)
        if config.double_quant:
            layer.absmax_codes, layer.absmax_scale, layer.absmax_mean = quantize_scales(absmax, config.scale_block_size)
        else:
            layer.absmax = absmax
        if linear.bias is not None:
            layer.bias = linear.bias.requires_grad_(False)
        return layer

    # -- the weight ------------------------------------------------------------------------
    def scales(self) -> torch.Tensor:
        """The first-level absmax scales (n/b,) float32 (after double quantization, if used)."""
        if not self.double_quant:
            return self.absmax
        return dequantize_scales(self.absmax_codes, self.absmax_scale, self.absmax_mean, self.scale_block_size)

    @torch.no_grad()
    def dequantize(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        """Ŵ (d_out, d_in) in ``dtype`` (default: the compute dtype), the same bits by every path: on a GPU by one
        compiled kernel (:mod:`loralab.quant.fused_dequant`), on a CPU by bitsandbytes' kernel where it is installed
        (:mod:`loralab.quant.library_dequant`), else by :func:`~loralab.quant.blockwise.dequantize_nf4`."""
        shape, dtype, scales = (self.out_features, self.in_features), dtype or self.compute_dtype, self.scales()
        device = self.codes.device.type
        fast = dequantize_nf4_fused if device == "cuda" else dequantize_nf4_bitsandbytes if device == "cpu" else None
        out = None if fast is None else fast(self.codes, scales, shape, dtype)
        return out if out is not None else dequantize_nf4(self.codes, scales, shape, dtype)

    @property
    def device(self) -> torch.device:
        return self.codes.device

    @property
    def quantized_numel(self) -> int:
        """Number of weights stored in 4 bits (d_out · d_in)."""
        return self.in_features * self.out_features

    def quantized_nbytes(self) -> int:
        """Bytes of the 4-bit weight: codes and scales (not the bias)."""
        return sum(buf.numel() * buf.element_size() for buf in self.buffers(recurse=False))

    # -- forward ---------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        autocast = torch.is_autocast_enabled(x.device.type)
        out_dtype = torch.get_autocast_dtype(x.device.type) if autocast else x.dtype
        out = NF4Matmul.apply(x, self, out_dtype if autocast else self.compute_dtype).to(out_dtype)
        return out + self.bias.to(out_dtype) if self.bias is not None else out

    # -- dtype casts must not round the float32 scales -------------------------------------
    def _apply(self, fn, recurse: bool = True):
        """``.to(dtype)`` / ``.half()`` move the scales but keep them float32 (the bias follows the cast)."""
        kept = {name: self._buffers[name] for name in _FLOAT32_STATE if name in self._buffers}
        super()._apply(fn, recurse)
        for name, old in kept.items():
            if self._buffers[name].dtype != old.dtype:
                self._buffers[name] = old.to(self._buffers[name].device)
        self.weight_dtype = fn(torch.empty(0, dtype=self.weight_dtype, device=self.codes.device)).dtype
        return self

    def extra_repr(self) -> str:
        scales = f"double_quant(scale_block={self.scale_block_size})" if self.double_quant else "fp32 scales"
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, "
            f"nf4 block={self.block_size}, {scales}, compute={str(self.compute_dtype).replace('torch.', '')}"
        )


# QLoRA: LoRA wraps a 4-bit base like an nn.Linear (same in_features / out_features)
register_lora_layer(NF4Linear, LoraLinear)
