"""``NF4Linear.dequantize`` through bitsandbytes' kernel on the CPU: the eager path's bits, and the eager path where
bitsandbytes is missing or does not take the layout."""

import pytest
import torch

import loralab.quant.library_dequant as library_dequant
from loralab.quant import NF4Linear, QuantConfig
from loralab.quant.blockwise import dequantize_nf4, quantize_nf4
from loralab.quant.library_dequant import dequantize_nf4_bitsandbytes

needs_bitsandbytes = pytest.mark.skipif(library_dequant._bitsandbytes_functional() is None, reason="bitsandbytes is not installed")


@needs_bitsandbytes
@pytest.mark.parametrize("shape", [(96, 96), (34, 64), (48, 80)])  # blocks cross rows in the first and last
@pytest.mark.parametrize("block", [32, 64, 128])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_the_same_bits_as_the_eager_path(shape, block, dtype):
    weight = torch.randn(shape) * torch.logspace(-2, 1, shape[1])
    weight.view(-1)[:block] = 0  # a block of zeros
    codes, scales = quantize_nf4(weight, block)
    fast = dequantize_nf4_bitsandbytes(codes, scales, shape, dtype)
    assert fast is not None and fast.shape == shape and fast.dtype == dtype
    assert torch.equal(fast, dequantize_nf4(codes, scales, shape, dtype))


@needs_bitsandbytes
@pytest.mark.parametrize("double_quant", [False, True])
def test_nf4_linear_dequantizes_through_it_on_the_cpu(monkeypatch, double_quant):
    layer = NF4Linear.from_linear(torch.nn.Linear(96, 64), QuantConfig(double_quant=double_quant))
    calls = []
    real = library_dequant._bitsandbytes_functional
    monkeypatch.setattr(library_dequant, "_bitsandbytes_functional", lambda: calls.append(1) or real())
    fast = layer.dequantize(torch.bfloat16)
    assert calls == [1]
    assert torch.equal(fast, dequantize_nf4(layer.codes, layer.scales(), (64, 96), torch.bfloat16))


def test_the_eager_path_without_bitsandbytes_or_where_it_does_not_apply(monkeypatch):
    codes, scales = quantize_nf4(torch.randn(8, 32), 16)
    assert dequantize_nf4_bitsandbytes(codes, scales, (8, 32), torch.float32) is None  # block 16: not a bitsandbytes size
    codes, scales = quantize_nf4(torch.randn(8, 32), 32)
    assert dequantize_nf4_bitsandbytes(codes, scales, (8, 32), torch.float64) is None
    assert dequantize_nf4_bitsandbytes(codes.to("meta"), scales.to("meta"), (8, 32), torch.float32) is None

    monkeypatch.setattr(library_dequant, "_bitsandbytes_functional", lambda: None)
    assert dequantize_nf4_bitsandbytes(codes, scales, (8, 32), torch.float32) is None
    layer = NF4Linear.from_linear(torch.nn.Linear(96, 64))
    assert torch.equal(layer.dequantize(torch.float32), dequantize_nf4(layer.codes, layer.scales(), (64, 96), torch.float32))
