"""The fused LoRA linear (one autograd function) against float64 hand-computed values and the separate path; the
checks that apply to every fused variant (plain LoRA, DoRA) are parametrized by variant. DoRA's own: test_fused_dora.py."""

import pytest
import torch
from torch import nn

from loralab import LoraConfig, add_adapter
from loralab.lora.dropout_path import keep_mask
from loralab.lora.layers import AdapterSpec, LoraLinear
from loralab.quant import NF4Linear, QuantConfig


def _rel(a, b):
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_forward_and_gradients_equal_hand_computed_float64(dropout, fused_calls, one_adapter_layer, run_layer):
    """y = x Wᵀ + b + s·c·((x ⊙ m) Aᵀ) Bᵀ and its gradients by autograd on plain float64 ops, the same mask m."""
    layer = one_adapter_layer(dtype=torch.float64, dropout=dropout)
    x = torch.randn(3, 5, 24, dtype=torch.float64)
    grad = torch.randn(3, 5, 20, dtype=torch.float64)
    y, dx, dA, dB = run_layer(layer, x, grad, fused=True)
    assert fused_calls == ["lora"]

    torch.manual_seed(7)
    keep, p_used = keep_mask(x, dropout) if dropout else (torch.ones_like(x), 0.0)
    W, b = layer.base_layer.weight, layer.base_layer.bias
    x_ref = x.clone().requires_grad_(True)
    A = layer.lora_A["a"].detach().clone().requires_grad_(True)
    B = layer.lora_B["a"].detach().clone().requires_grad_(True)
    y_ref = x_ref @ W.T + b + 1.5 / (1 - p_used) * ((x_ref * keep) @ A.T) @ B.T
    y_ref.backward(grad)
    for got, want in zip((y, dx, dA, dB), (y_ref, x_ref.grad, A.grad, B.grad)):
        torch.testing.assert_close(got, want.detach(), rtol=1e-12, atol=1e-12)
    assert _rel(y, (x @ W.T + b)) > 0.1  # the adapter changed the output


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_float64_gradcheck(dropout, one_adapter_layer):
    layer = one_adapter_layer(d_in=7, d_out=6, r=3, dtype=torch.float64, dropout=dropout)
    x = torch.randn(5, 7, dtype=torch.float64, requires_grad=True)
    A0 = layer.lora_A["a"].detach().clone().requires_grad_(True)
    B0 = layer.lora_B["a"].detach().clone().requires_grad_(True)

    def fn(x, A, B):
        torch.manual_seed(3)  # the same mask at every evaluation
        return torch.func.functional_call(layer, {"lora_A.a": A, "lora_B.a": B}, (x,))

    assert torch.autograd.gradcheck(fn, (x, A0, B0))


CASES = {  # name: (weights dtype, autocast, relative tolerance against the separate path)
    "fp32": (torch.float32, False, 1e-5),
    "bf16 weights": (torch.bfloat16, False, 3e-2),
    "fp32 weights, bf16 autocast": (torch.float32, True, 3e-2),
}
VARIANTS = ["lora", "dora"]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dropout", [0.0, 0.1])
def test_same_as_the_separate_path(case, dropout, variant, fused_calls, one_adapter_layer, run_layer):
    dtype, autocast, tol = CASES[case]
    layer = one_adapter_layer(d_in=64, d_out=48, r=8, dtype=dtype, dropout=dropout, variant=variant)
    x, grad = torch.randn(4, 16, 64, dtype=dtype), torch.randn(4, 16, 48)
    fused = run_layer(layer, x, grad, fused=True, autocast=autocast)
    assert fused_calls == [variant]
    separate = run_layer(layer, x, grad, fused=False, autocast=autocast)
    assert fused_calls == [variant] and len(fused) == 2 + len(layer.adapter_parameters("a"))
    for name, got, want in zip(("y", "dx", "dA", "dB", "dm"), fused, separate):
        assert _rel(got, want) < tol, name
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        assert fused[0].dtype == torch.float64 and layer(x).dtype == (torch.bfloat16 if autocast else dtype)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("autocast", [False, True])
def test_4bit_base_same_as_the_separate_path_and_no_dense_weight_kept(autocast, variant, fused_calls, one_adapter_layer, run_layer):
    quantized = NF4Linear.from_linear(nn.Linear(64, 48).requires_grad_(False), QuantConfig(compute_dtype="float32"))
    layer = one_adapter_layer(base=quantized, dropout=0.1, variant=variant)
    x, grad = torch.randn(6, 64), torch.randn(6, 48)
    fused = run_layer(layer, x, grad, fused=True, autocast=autocast)
    separate = run_layer(layer, x, grad, fused=False, autocast=autocast)
    assert fused_calls == [variant]
    for name, got, want in zip(("y", "dx", "dA", "dB", "dm"), fused, separate):
        assert _rel(got, want) < (3e-2 if autocast else 1e-5), name

    layer.fused = True
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(tuple(t.shape)) or t, lambda t: t):
        layer(x.requires_grad_(True))
    assert (48, 64) not in saved  # Ŵ is dequantized again in backward


@pytest.mark.parametrize("dropout", [0.0, 0.1])
def test_saves_no_more_than_the_separate_path(dropout, saved_bytes, one_adapter_layer):
    """Only the r-wide h (and the 1-byte mask with dropout) besides x and the parameters."""
    layer = one_adapter_layer(d_in=64, d_out=48, r=8, dropout=dropout)
    x = torch.randn(32, 64, requires_grad=True)
    layer.fused = False
    separate = saved_bytes(layer, x)
    layer.fused = True
    fused = saved_bytes(layer, x)
    assert fused == 32 * 8 * 4 + (32 * 64 if dropout else 0)
    assert fused <= separate


def _two_active(layer):
    layer.add("b", AdapterSpec(r=2, scale=1.0))
    layer.set_active(["a", "b"])


SEPARATE = {  # why the fused function does not apply: what is done to the layer
    "switched off": lambda layer: setattr(layer, "fused", False),
    "two active adapters": _two_active,
    "merged adapter": lambda layer: layer.merge(["a"]),
    "base weight trains": lambda layer: layer.base_layer.weight.requires_grad_(True),
    "base bias trains": lambda layer: layer.base_layer.bias.requires_grad_(True),
    "factors' dtype differs, no autocast": lambda layer: layer.base_layer.to(torch.bfloat16),
}


@pytest.mark.parametrize("change", SEPARATE)
def test_the_separate_path_where_fusion_does_not_apply(change, fused_calls, one_adapter_layer):
    layer = one_adapter_layer()
    SEPARATE[change](layer)
    x = torch.randn(5, 24).to(layer.base_layer.weight.dtype)
    expected = layer.base_layer(x).float()
    for name in layer.active:
        if name not in layer.merged:
            expected = expected + layer.variant(name).output(x, expected, layer, name)
    y = layer(x)
    assert fused_calls == []
    torch.testing.assert_close(y.float(), expected, rtol=2e-2 if y.dtype == torch.bfloat16 else 1e-5, atol=1e-2)


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_model_trains_the_same_with_and_without_fusion(variant, make_model, randomize, tokens, fused_calls):
    """Tiny Llama, LoRA or DoRA with dropout on every linear layer: the loss and every adapter gradient match."""
    model = make_model("llama")
    add_adapter(model, LoraConfig(r=4, alpha=8, dropout=0.1, use_dora=variant == "dora"))
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
    layers = [m for m in model.modules() if isinstance(m, LoraLinear)]
    assert len(layers) >= 7 and fused_calls == [variant] * len(layers)
    (loss_f, grads_f), (loss_s, grads_s) = results
    torch.testing.assert_close(loss_f, loss_s, rtol=1e-6, atol=0)
    assert grads_f.keys() == grads_s.keys() and len(grads_f) == len(layers) * len(layers[0].adapter_parameters("default"))
    for name in grads_f:
        assert _rel(grads_f[name].double(), grads_s[name].double()) < 1e-5, name
