"""QLoRA's 4-bit base: NF4 storage of frozen linear layers, in plain PyTorch (CPU and CUDA alike).

``quantize_base(model, QuantConfig())`` swaps each frozen ``nn.Linear`` for an ``NF4Linear``
(4-bit NormalFloat, block 64, double-quantized scales: ≈ 4.127 bits/weight); LoRA adapters,
added before or after, train on top in full precision. ``dequantize_base`` swaps back (to
merge adapters); ``weight_memory`` reports the bytes.
"""

from loralab.quant.codebook import NF4, nf4_from_normal_quantiles
from loralab.quant.config import QuantConfig
from loralab.quant.convert import dequantize_base, quantize_base
from loralab.quant.memory import WeightMemory, weight_memory
from loralab.quant.nf4_linear import NF4Linear

__all__ = [
    "NF4", "NF4Linear", "QuantConfig", "WeightMemory", "dequantize_base", "nf4_from_normal_quantiles",
    "quantize_base", "weight_memory",
]  # fmt: skip
