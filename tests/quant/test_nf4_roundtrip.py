"""Blockwise NF4 quantization and double quantization of the scales: errors against float64 references."""

import pytest
import torch

from loralab.errors import ConfigError
from loralab.quant.blockwise import dequantize_nf4, quantize_nf4
from loralab.quant.codebook import NF4
from loralab.quant.config import QuantConfig
from loralab.quant.double_quant import dequantize_scales, quantize_scales
from loralab.quant.nf4_linear import NF4Linear

BOOK = torch.tensor(NF4, dtype=torch.float64)


def _layer(weight: torch.Tensor, **config) -> NF4Linear:
    linear = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    linear.weight.data = weight
    return NF4Linear.from_linear(linear, QuantConfig(**config))


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gaussian_weights_round_trip_with_about_9_percent_error(seed):
    """‖W − Ŵ‖/‖W‖ for W ~ N(0, 1) (256×256): measured 0.0913–0.0926 over seeds 0–4."""
    W = torch.randn(256, 256, generator=torch.Generator().manual_seed(seed))
    err = _rel(_layer(W, double_quant=False).dequantize(torch.float64), W)
    assert 0.089 < err < 0.095


def test_each_weight_gets_its_nearest_code():
    """|w − Ŵ| is the distance to the nearest NF4 value · absmax (float64 reference, up to 1e-6·absmax)."""
    W = torch.randn(64, 64, generator=torch.Generator().manual_seed(3))
    packed, absmax = quantize_nf4(W, 64)
    blocks = W.double().reshape(-1, 64)
    c = blocks.abs().amax(1, keepdim=True)
    assert torch.equal(absmax.double(), c[:, 0])
    best = (blocks[..., None] - BOOK * c[..., None]).abs().amin(-1)
    got = (blocks - dequantize_nf4(packed, absmax, (64, 64), torch.float64).reshape(-1, 64)).abs()
    assert (got - best).max() <= 1e-6 * c.max()


def test_values_on_the_code_book_come_back_exactly():
    """A block made of NF4 values · c (every value 4 times, shuffled) is reproduced bit for bit."""
    gen = torch.Generator().manual_seed(4)
    blocks = []
    for c in (0.37, 2.5, 1e-3, 123.0):
        values = torch.tensor(NF4, dtype=torch.float32).repeat(4)[torch.randperm(64, generator=gen)]
        blocks.append(values * c)
    W = torch.stack(blocks).reshape(8, 32)
    assert torch.equal(_layer(W, double_quant=False).dequantize(torch.float32), W)
    # with double quantization too, when every block has the same absmax (ŝ = mean, exactly)
    same = torch.stack([blocks[0]] * 4).reshape(8, 32)
    assert torch.equal(_layer(same, double_quant=True).dequantize(torch.float32), same)


def test_a_zero_block_stays_zero():
    W = torch.randn(4, 64)
    W[1] = 0
    Wh = _layer(W).dequantize(torch.float32)
    assert torch.equal(Wh[1], torch.zeros(64)) and torch.isfinite(Wh).all()


def test_double_quantization_error_is_bounded_and_small():
    """|ŝ − s| ≤ c_k/254 for each scale (c_k = max |s − mean| over its 256-block); the weight's
    relative error grows by < 1e-4 (measured 0.6e-5 – 2.1e-5 over seeds 0–4)."""
    W = torch.randn(256, 256, generator=torch.Generator().manual_seed(5))
    _, s = quantize_nf4(W, 64)
    q, c, mean = quantize_scales(s, 256)
    assert q.dtype == torch.int8 and q.shape == s.shape and c.shape == (4,) and mean.shape == ()
    s_hat = dequantize_scales(q, c, mean, 256).double()
    centred = s.double() - s.double().mean()
    bound = centred.reshape(4, 256).abs().amax(1).repeat_interleave(256) / 254
    assert ((s_hat - s.double()).abs() <= bound + 1e-6).all()
    plain = _rel(_layer(W, double_quant=False).dequantize(torch.float64), W)
    double = _rel(_layer(W, double_quant=True).dequantize(torch.float64), W)
    assert abs(double - plain) < 1e-4


def test_double_quantization_pads_a_partial_scale_block():
    s = torch.rand(300, generator=torch.Generator().manual_seed(6)) + 0.5
    q, c, mean = quantize_scales(s, 256)
    assert q.shape == (300,) and c.shape == (2,)
    assert (dequantize_scales(q, c, mean, 256) - s).abs().max() < 0.5 / 127


def test_bits_per_weight_with_and_without_double_quant():
    """4 + 8/64 + 32/(64·256) (+ one fp32 mean) = 4.12698 bits; fp32 scales: 4 + 32/64 = 4.5."""
    W = torch.randn(1024, 1024)
    n = W.numel()
    dq = _layer(W)
    assert dq.quantized_nbytes() == n // 2 + n // 64 + 4 * n // (64 * 256) + 4
    assert 8 * dq.quantized_nbytes() / n == pytest.approx(4 + 8 / 64 + 32 / (64 * 256), abs=1e-4)
    assert 8 * _layer(W, double_quant=False).quantized_nbytes() / n == 4.5


def test_a_block_size_not_dividing_the_weight_is_an_error():
    with pytest.raises(ConfigError, match="block_size=64 does not divide the weight's 96 elements"):
        _layer(torch.randn(8, 12))
