"""NF4Linear as a module: forward/backward against the dense Ŵ, frozen storage, dtype casts, state dicts."""

import pytest
import torch
import torch.nn.functional as F

from loralab.quant import NF4Linear, QuantConfig
from loralab.quant.matmul import NF4Matmul


def _linear(d_in=64, d_out=48, bias=True, dtype=torch.float32, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Linear(d_in, d_out, bias=bias).to(dtype)


def test_storage_is_frozen_buffers_and_the_bias_is_kept():
    linear = _linear()
    layer = NF4Linear.from_linear(linear)
    buffers = {name: (tuple(b.shape), b.dtype) for name, b in layer.named_buffers()}
    assert buffers == {
        "codes": ((64 * 48 // 2,), torch.uint8),
        "absmax_codes": ((48,), torch.int8),
        "absmax_scale": ((1,), torch.float32),
        "absmax_mean": ((), torch.float32),
    }
    assert [name for name, _ in layer.named_parameters()] == ["bias"]
    assert not any(p.requires_grad for p in layer.parameters())
    assert torch.equal(layer.bias, linear.bias) and (layer.in_features, layer.out_features) == (64, 48)
    assert layer.device == torch.device("cpu") and layer.weight_dtype == torch.float32


@pytest.mark.parametrize("compute", ["float32", "bfloat16"])
def test_forward_is_the_dense_layer_with_the_dequantized_weight(compute):
    """y = x Ŵᵀ + b with x and Ŵ in the compute dtype, y in x's dtype (float32 here)."""
    layer = NF4Linear.from_linear(_linear(), QuantConfig(compute_dtype=compute))
    dtype = layer.compute_dtype
    x = torch.randn(3, 5, 64)
    expected = (F.linear(x.to(dtype), layer.dequantize(dtype)).float() + layer.bias).float()
    y = layer(x)
    assert y.dtype == torch.float32 and torch.equal(y, expected)


def test_under_autocast_it_computes_and_returns_the_autocast_dtype():
    layer = NF4Linear.from_linear(_linear(), QuantConfig(compute_dtype="float32"))
    x = torch.randn(4, 64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = layer(x)
    assert y.dtype == torch.bfloat16
    expected = F.linear(x.bfloat16(), layer.dequantize(torch.bfloat16)) + layer.bias.bfloat16()
    assert torch.equal(y, expected)


def test_backward_gives_the_dense_input_gradient_and_saves_no_dense_weight():
    layer = NF4Linear.from_linear(_linear(bias=False), QuantConfig(compute_dtype="float32"))
    x = torch.randn(6, 64, requires_grad=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(tuple(t.shape)) or t, lambda t: t):
        y = layer(x)
    assert (48, 64) not in saved  # Ŵ is rebuilt in backward, not kept
    grad = torch.randn(6, 48)
    y.backward(grad)
    assert torch.allclose(x.grad, grad @ layer.dequantize(torch.float32), atol=1e-6)


def test_float64_gradcheck_of_the_4bit_matmul():
    layer = NF4Linear.from_linear(_linear(d_in=64, d_out=8, bias=False))
    x = torch.randn(3, 64, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: NF4Matmul.apply(x, layer, torch.float64), (x,), fast_mode=True)


def test_a_dtype_cast_keeps_the_float32_scales():
    layer = NF4Linear.from_linear(_linear(), QuantConfig(compute_dtype="float32"))
    before = {name: b.clone() for name, b in layer.named_buffers()}
    layer.to(torch.bfloat16)
    assert all(torch.equal(b, before[name]) and b.dtype == before[name].dtype for name, b in layer.named_buffers())
    assert layer.bias.dtype == torch.bfloat16 and layer.weight_dtype == torch.bfloat16
    layer.float()
    assert layer.weight_dtype == torch.float32


@pytest.mark.parametrize("double_quant", [True, False])
def test_state_dict_round_trip(double_quant):
    config = QuantConfig(double_quant=double_quant)
    layer = NF4Linear.from_linear(_linear(), config)
    fresh = NF4Linear(64, 48, bias=True, config=config)
    fresh.load_state_dict(layer.state_dict())
    assert torch.equal(fresh.dequantize(torch.float32), layer.dequantize(torch.float32))
