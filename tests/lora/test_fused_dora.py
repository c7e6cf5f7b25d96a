"""The fused DoRA linear (one autograd function) against float64 hand-computed values; its equality with the
separate path (which tests/lora/test_dora.py checks against PEFT) is in test_fused_linear.py, by variant."""

import pytest
import torch

import loralab.lora.fused_linear as fused_linear
from loralab.lora.dropout_path import keep_mask


def _rel(a, b):
    return float((a - b).norm() / b.norm())


NAMES = ("y", "dx", "dA", "dB", "dm")


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_forward_and_gradients_equal_hand_computed_float64(dropout, bias, fused_calls, one_adapter_layer, run_layer):
    """y = x Wᵀ + b + (g − 1) ⊙ x' Wᵀ + g ⊙ s·x' Aᵀ Bᵀ, g = m / ‖W + s·B A‖ (a constant for autograd),
    x' = x ⊙ k / (1 − p), by autograd on plain float64 ops with the same mask k."""
    layer = one_adapter_layer(variant="dora", dtype=torch.float64, dropout=dropout, bias=bias)
    x = torch.randn(3, 5, 24, dtype=torch.float64)
    grad = torch.randn(3, 5, 20, dtype=torch.float64)
    got = run_layer(layer, x, grad, fused=True)
    assert fused_calls == ["dora"]

    torch.manual_seed(7)
    keep, p_used = keep_mask(x, dropout) if dropout else (torch.ones_like(x), 0.0)
    W, b = layer.base_layer.weight, layer.base_layer.bias
    x_ref = x.clone().requires_grad_(True)
    A, B, m = (p.detach().clone().requires_grad_(True) for p in layer.adapter_parameters("a"))
    g = m / torch.linalg.vector_norm(W + 1.5 * B.detach() @ A.detach(), dim=1)
    dropped = x_ref * keep / (1 - p_used)
    y_ref = x_ref @ W.T + (g - 1) * (dropped @ W.T) + g * (1.5 * (dropped @ A.T) @ B.T)
    y_ref = y_ref + b if bias else y_ref
    y_ref.backward(grad)
    for name, have, want in zip(NAMES, got, (y_ref, x_ref.grad, A.grad, B.grad, m.grad)):
        torch.testing.assert_close(have, want.detach(), rtol=1e-12, atol=1e-12, msg=name)
    assert _rel(got[0], x @ W.T + (b if bias else 0)) > 0.1  # the adapter changed the output


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_float64_gradcheck_of_input_and_magnitude(dropout, one_adapter_layer):
    """gradcheck through x and m (the norm, a constant for autograd by design, depends on neither)."""
    layer = one_adapter_layer(variant="dora", d_in=7, d_out=6, r=3, dtype=torch.float64, dropout=dropout)
    x = torch.randn(5, 7, dtype=torch.float64, requires_grad=True)
    m0 = layer.variant_params["a"]["magnitude"].detach().clone().requires_grad_(True)

    def fn(x, m):
        torch.manual_seed(3)  # the same mask at every evaluation
        return torch.func.functional_call(layer, {"variant_params.a.magnitude": m}, (x,))

    assert torch.autograd.gradcheck(fn, (x, m0))


@pytest.mark.parametrize("dropout", [0.0, 0.1])
def test_saves_less_than_the_separate_path(dropout, saved_bytes, one_adapter_layer):
    """h (N, r), d (N, d_out), g and the norm (d_out,), and the 1-byte mask with dropout, besides x and the
    parameters; the separate path keeps two (N, d_out) tensors, and with dropout a dropped copy of x."""
    n, d_in, d_out, r = 32, 64, 48, 8
    layer = one_adapter_layer(variant="dora", d_in=d_in, d_out=d_out, r=r, dropout=dropout)
    x = torch.randn(n, d_in, requires_grad=True)
    layer.fused = False
    separate = saved_bytes(layer, x)
    layer.fused = True
    fused = saved_bytes(layer, x)
    assert fused == 4 * (n * r + n * d_out + 2 * d_out) + (n * d_in if dropout else 0)
    assert fused < separate - 4 * n * d_out


def test_separate_path_for_a_variant_without_a_fused_function(monkeypatch, fused_calls, one_adapter_layer):
    monkeypatch.delitem(fused_linear.FUSED, "dora")
    layer = one_adapter_layer(variant="dora")
    x = torch.randn(5, 24)
    y = layer(x)
    assert fused_calls == []
    torch.testing.assert_close(y, layer.base_layer(x) + layer.variant("a").output(x, layer.base_layer(x), layer, "a"))
