"""The compiled NF4 dequantisation (used on GPUs) gives the eager path's bits; a machine that cannot compile
falls back to eager. Compiled here for the CPU (inductor's C++), the same generated code path as for CUDA."""

import pytest
import torch

from loralab.quant import fused_dequant
from loralab.quant.blockwise import dequantize_nf4, quantize_nf4
from loralab.quant.config import QuantConfig
from loralab.quant.fused_dequant import dequantize_nf4_fused
from loralab.quant.nf4_linear import NF4Linear


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_compiled_dequantisation_gives_the_eager_bits(dtype):
    torch.manual_seed(0)
    weight = torch.randn(96, 128) * torch.logspace(-3, 1, 128)  # scales over four decades
    weight[:2] = 0  # whole blocks of zeros: scale 0
    layer = NF4Linear.from_linear(torch.nn.Linear(128, 96, bias=False), QuantConfig())  # double-quantized scales
    with torch.no_grad():
        layer.codes.copy_(quantize_nf4(weight, 64)[0])
    for packed, scales in ((layer.codes, layer.scales()), quantize_nf4(weight, 64)):
        eager = dequantize_nf4(packed, scales, (96, 128), dtype)
        compiled = dequantize_nf4_fused(packed, scales, (96, 128), dtype)
        assert compiled is not None and compiled.dtype == dtype and compiled.shape == (96, 128)
        assert torch.equal(compiled, eager)
        assert eager.abs().max() > 0 and torch.equal(eager[:2], torch.zeros_like(eager[:2]))


def test_a_machine_that_cannot_compile_falls_back_to_eager(monkeypatch):
    def broken(fn, **kwargs):
        def call(*args):
            raise RuntimeError("no compiler here")

        return call

    monkeypatch.setattr(fused_dequant, "_compiled", None)
    monkeypatch.setattr(fused_dequant, "_unavailable", False)
    monkeypatch.setattr(torch, "compile", broken)
    packed, scales = quantize_nf4(torch.randn(8, 64), 64)
    assert dequantize_nf4_fused(packed, scales, (8, 64), torch.float32) is None
    assert fused_dequant._unavailable  # not tried again
