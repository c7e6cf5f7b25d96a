"""The fused DoRA linear (one autograd function) against float64 hand-computed values and the separate path,
which tests/lora/test_dora.py checks against PEFT."""

import pytest
import torch
from torch import nn

import loralab.lora.fused_dora as fused_dora
import loralab.lora.fused_linear as fused_linear
from loralab import LoraConfig, add_adapter
from loralab.lora.dropout_path import keep_mask
from loralab.lora.layers import AdapterSpec, LoraLinear
from loralab.quant import NF4Linear, QuantConfig


@pytest.fixture
def fused_calls(monkeypatch):
    """A list that grows by one each time the fused DoRA function runs."""
    calls = []
    original = fused_dora._FusedDoraLinear.apply
    monkeypatch.setattr(fused_dora._FusedDoraLinear, "apply", lambda *a: calls.append(1) or original(*a))
    return calls


def _layer(d_in=24, d_out=20, r=4, dtype=torch.float32, dropout=0.0, bias=True, base=None, seed=0):
    """A LoraLinear with one active DoRA adapter: A, B random (B ≠ 0), scale 1.5, a magnitude that is not
    ‖W + ΔL‖ (direction and length both matter), on a frozen base."""
    torch.manual_seed(seed)
    base = base if base is not None else nn.Linear(d_in, d_out, bias=bias).to(dtype).requires_grad_(False)
    layer = LoraLinear(base)
    layer.add("a", AdapterSpec(r=r, scale=1.5, dropout=dropout, variant="dora"))
    with torch.no_grad():
        layer.lora_A["a"].normal_()
        layer.lora_B["a"].normal_()
        magnitude = layer.variant_params["a"]["magnitude"]
        magnitude.mul_(0.5 + torch.rand(magnitude.shape, dtype=magnitude.dtype))
    layer.set_active(["a"])
    return layer


def _parameters(layer):
    return layer.lora_A["a"], layer.lora_B["a"], layer.variant_params["a"]["magnitude"]


def _run(layer, x, grad, fused, seed=7, autocast=False):
    """(y, dx, dA, dB, dm) as float64, with the dropout mask drawn from ``seed``."""
    layer.fused = fused
    x = x.detach().clone().requires_grad_(True)
    torch.manual_seed(seed)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        y = layer(x)
    y.backward(grad.to(y.dtype))
    out = [t.detach().double() for t in (y, x.grad, *(p.grad for p in _parameters(layer)))]
    for p in _parameters(layer):
        p.grad = None
    return out


def _rel(a, b):
    return float((a - b).norm() / b.norm())


NAMES = ("y", "dx", "dA", "dB", "dm")


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_forward_and_gradients_equal_hand_computed_float64(dropout, bias, fused_calls):
    """y = x Wᵀ + b + (g − 1) ⊙ x' Wᵀ + g ⊙ s·x' Aᵀ Bᵀ, g = m / ‖W + s·B A‖ (a constant for autograd),
    x' = x ⊙ k / (1 − p), by autograd on plain float64 ops with the same mask k."""
    layer = _layer(dtype=torch.float64, dropout=dropout, bias=bias)
    x = torch.randn(3, 5, 24, dtype=torch.float64)
    grad = torch.randn(3, 5, 20, dtype=torch.float64)
    got = _run(layer, x, grad, fused=True)
    assert fused_calls == [1]

    torch.manual_seed(7)
    keep, p_used = keep_mask(x, dropout) if dropout else (torch.ones_like(x), 0.0)
    W, b = layer.base_layer.weight, layer.base_layer.bias
    x_ref = x.clone().requires_grad_(True)
    A, B, m = (p.detach().clone().requires_grad_(True) for p in _parameters(layer))
    g = m / torch.linalg.vector_norm(W + 1.5 * B.detach() @ A.detach(), dim=1)
    dropped = x_ref * keep / (1 - p_used)
    y_ref = x_ref @ W.T + (g - 1) * (dropped @ W.T) + g * (1.5 * (dropped @ A.T) @ B.T)
    y_ref = y_ref + b if bias else y_ref
    y_ref.backward(grad)
    for name, have, want in zip(NAMES, got, (y_ref, x_ref.grad, A.grad, B.grad, m.grad)):
        torch.testing.assert_close(have, want.detach(), rtol=1e-12, atol=1e-12, msg=name)
    assert _rel(got[0], x @ W.T + (b if bias else 0)) > 0.1  # the adapter changed the output


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_float64_gradcheck_of_input_and_magnitude(dropout):
    """gradcheck through x and m (the norm, a constant for autograd by design, depends on neither)."""
    layer = _layer(d_in=7, d_out=6, r=3, dtype=torch.float64, dropout=dropout)
    x = torch.randn(5, 7, dtype=torch.float64, requires_grad=True)
    m0 = layer.variant_params["a"]["magnitude"].detach().clone().requires_grad_(True)

    def fn(x, m):
        torch.manual_seed(3)  # the same mask at every evaluation
        return torch.func.functional_call(layer, {"variant_params.a.magnitude": m}, (x,))

    assert torch.autograd.gradcheck(fn, (x, m0))


CASES = {  # name: (weights dtype, autocast, relative tolerance against the separate path)
    "fp32": (torch.float32, False, 1e-5),
    "bf16 weights": (torch.bfloat16, False, 3e-2),
    "fp32 weights, bf16 autocast": (torch.float32, True, 3e-2),
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dropout", [0.0, 0.1])
def test_same_as_the_separate_path(case, dropout, fused_calls):
    dtype, autocast, tol = CASES[case]
    layer = _layer(d_in=64, d_out=48, r=8, dtype=dtype, dropout=dropout)
    x, grad = torch.randn(4, 16, 64, dtype=dtype), torch.randn(4, 16, 48)
    fused = _run(layer, x, grad, fused=True, autocast=autocast)
    assert fused_calls == [1]
    separate = _run(layer, x, grad, fused=False, autocast=autocast)
    assert fused_calls == [1]
    for name, got, want in zip(NAMES, fused, separate):
        assert _rel(got, want) < tol, name
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        assert layer(x).dtype == (torch.bfloat16 if autocast else dtype)


@pytest.mark.parametrize("autocast", [False, True])
def test_4bit_base_same_as_the_separate_path_and_no_dense_weight_kept(autocast, fused_calls):
    quantized = NF4Linear.from_linear(nn.Linear(64, 48).requires_grad_(False), QuantConfig(compute_dtype="float32"))
    layer = _layer(base=quantized, dropout=0.1)
    x, grad = torch.randn(6, 64), torch.randn(6, 48)
    fused = _run(layer, x, grad, fused=True, autocast=autocast)
    separate = _run(layer, x, grad, fused=False, autocast=autocast)
    assert fused_calls == [1]
    for name, got, want in zip(NAMES, fused, separate):
        assert _rel(got, want) < (3e-2 if autocast else 1e-5), name

    layer.fused = True
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(tuple(t.shape)) or t, lambda t: t):
        layer(x.requires_grad_(True))
    assert (48, 64) not in saved  # Ŵ is dequantized again in backward


@pytest.mark.parametrize("dropout", [0.0, 0.1])
def test_saves_less_than_the_separate_path(dropout, saved_bytes):
    """h (N, r), d (N, d_out), g and the norm (d_out,), and the 1-byte mask with dropout, besides x and the
    parameters; the separate path keeps two (N, d_out) tensors, and with dropout a dropped copy of x."""
    n, d_in, d_out, r = 32, 64, 48, 8
    layer = _layer(d_in=d_in, d_out=d_out, r=r, dropout=dropout)
    x = torch.randn(n, d_in, requires_grad=True)
    layer.fused = False
    separate = saved_bytes(layer, x)
    layer.fused = True
    fused = saved_bytes(layer, x)
    assert fused == 4 * (n * r + n * d_out + 2 * d_out) + (n * d_in if dropout else 0)
    assert fused < separate - 4 * n * d_out


def test_separate_path_for_a_variant_without_a_fused_function(monkeypatch, fused_calls):
    monkeypatch.delitem(fused_linear.FUSED, "dora")
    layer = _layer()
    x = torch.randn(5, 24)
    y = layer(x)
    assert fused_calls == []
    torch.testing.assert_close(y, layer.base_layer(x) + layer.variant("a").output(x, layer.base_layer(x), layer, "a"))


def test_a_model_trains_the_same_with_and_without_fusion(make_model, randomize, tokens, fused_calls):
    """Tiny Llama, DoRA with dropout on every linear layer: the loss and every adapter gradient match."""
    model = make_model("llama")
    add_adapter(model, LoraConfig(r=4, alpha=8, dropout=0.1, use_dora=True))
    randomize(model)
    model.train()
    results = []
    for fused in (True, False):
        for layer in model.modules():
            if isinstance(layer, LoraLinear):
                layer.fused = fused
        torch.manual_seed(11)
        loss = model(tokens, labels=tokens).loss
        loss.backward()
        results.append((loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}))
        model.zero_grad(set_to_none=True)
    layers = sum(isinstance(m, LoraLinear) for m in model.modules())
    assert layers >= 7 and len(fused_calls) == layers
    (loss_f, grads_f), (loss_s, grads_s) = results
    torch.testing.assert_close(loss_f, loss_s, rtol=1e-6, atol=0)
    assert grads_f.keys() == grads_s.keys() and len(grads_f) == 3 * layers
    for name in grads_f:
        assert _rel(grads_f[name].double(), grads_s[name].double()) < 1e-5, name
