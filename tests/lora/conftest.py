"""Helpers shared by the LoRA layer tests: one-adapter LoraLinear layers, running them, counting fused calls."""

import pytest
import torch
from torch import nn

import loralab.lora.fused_dora as fused_dora
import loralab.lora.fused_linear as fused_linear
from loralab.lora.layers import AdapterSpec, LoraLinear


@pytest.fixture
def fused_calls(monkeypatch):
    """A list that grows by the variant's name ("lora", "dora") each time a fused layer function runs."""
    calls = []
    for variant, function in (("lora", fused_linear._FusedLoraLinear), ("dora", fused_dora._FusedDoraLinear)):
        original = function.apply
        monkeypatch.setattr(function, "apply", lambda *a, _v=variant, _f=original: calls.append(_v) or _f(*a))
    return calls


@pytest.fixture
def one_adapter_layer():
    """``one_adapter_layer(d_in=24, d_out=20, r=4, dtype=float32, dropout=0, bias=True, base=None, seed=0,
    variant="lora")``: a LoraLinear with one active adapter "a" on a frozen base, A and B random (B ≠ 0), scale 1.5;
    DoRA's magnitude scaled per row by a factor in [0.5, 1.5) (direction and length both matter)."""

    def make(d_in=24, d_out=20, r=4, dtype=torch.float32, dropout=0.0, bias=True, base=None, seed=0, variant="lora"):
        torch.manual_seed(seed)
        base = base if base is not None else nn.Linear(d_in, d_out, bias=bias).to(dtype).requires_grad_(False)
        layer = LoraLinear(base)
        layer.add("a", AdapterSpec(r=r, scale=1.5, dropout=dropout, variant=variant))
        with torch.no_grad():
            layer.lora_A["a"].normal_()
            layer.lora_B["a"].normal_()
            for magnitude in layer.variant_params["a"].values():
                magnitude.mul_(0.5 + torch.rand(magnitude.shape, dtype=magnitude.dtype))
        layer.set_active(["a"])
        return layer

    return make


@pytest.fixture
def run_layer():
    """``run_layer(layer, x, grad, fused, seed=7, autocast=False)``: [y, dx, then the gradient of each of adapter "a"'s
    parameters (A, B, DoRA's magnitude)] as float64, the dropout mask drawn from ``seed``."""

    def run(layer, x, grad, fused, seed=7, autocast=False):
        layer.fused = fused
        x = x.detach().clone().requires_grad_(True)
        torch.manual_seed(seed)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            y = layer(x)
        y.backward(grad.to(y.dtype))
        parameters = layer.adapter_parameters("a")
        out = [t.detach().double() for t in (y, x.grad, *(p.grad for p in parameters))]
        for p in parameters:
            p.grad = None
        return out

    return run


@pytest.fixture
def saved_bytes():
    """``saved_bytes(layer, x)``: bytes of the distinct storages one forward saves for backward, leaving out x and
    the layer's parameters."""

    def measure(layer, x):
        storages = {}

        def pack(t):
            storages.setdefault(t.untyped_storage().data_ptr(), t)
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            layer(x)
        kept = {x.untyped_storage().data_ptr()} | {p.untyped_storage().data_ptr() for p in layer.parameters()}
        return sum(t.untyped_storage().nbytes() for ptr, t in storages.items() if ptr not in kept)

    return measure
