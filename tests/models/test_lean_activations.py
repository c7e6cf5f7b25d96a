"""Lean activations: the same losses and gradients as the model's own forward, with fewer tensors kept."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from loralab import LoraConfig, add_adapter
from loralab.models import lean_activations as lean
from loralab.models.lean_activations import Recomputables, enable_lean_activations, mark, rms_norm, swiglu


def _reference_rms_norm(x, weight, eps):
    """Llama's RMSNorm written out with autograd (transformers' order of operations)."""
    h = x.to(torch.float32)
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
    return weight * h.to(x.dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_rms_norm_matches_autograd(dtype):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 16, generator=gen, dtype=dtype).requires_grad_()
    w = (1 + 0.3 * torch.randn(16, generator=gen, dtype=dtype)).requires_grad_()
    grad_out = torch.randn(3, 5, 16, generator=gen, dtype=dtype)
    want = _reference_rms_norm(x, w, 1e-5)
    got = rms_norm(x, w, 1e-5)
    assert torch.equal(got, want)  # same operations in the same order: bit for bit
    want_grads = torch.autograd.grad(want, (x, w), grad_out)
    got_grads = torch.autograd.grad(got, (x, w), grad_out)
    tol = 1e-5  # transformers computes the statistics in float32 whatever the dtype; so do we
    for a, b in zip(got_grads, want_grads):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)
    assert got_grads[0].abs().max() > 0.1


def test_rms_norm_and_swiglu_gradcheck():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 8, generator=gen, dtype=torch.float64, requires_grad=True)
    w = torch.randn(8, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: rms_norm(a, b, 1e-6, compute=torch.float64), (x, w))
    g = torch.randn(2, 3, 8, generator=gen, dtype=torch.float64, requires_grad=True)
    u = torch.randn(2, 3, 8, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(swiglu, (g, u))
    assert torch.equal(swiglu(g, u), F.silu(g) * u)


def test_bf16_swiglu_gradients_close_to_autograd():
    gen = torch.Generator().manual_seed(2)
    g = torch.randn(4, 64, generator=gen).bfloat16().requires_grad_()
    u = torch.randn(4, 64, generator=gen).bfloat16().requires_grad_()
    dh = torch.randn(4, 64, generator=gen).bfloat16()
    want = torch.autograd.grad(F.silu(g) * u, (g, u), dh)
    got = torch.autograd.grad(swiglu(g, u), (g, u), dh)
    for a, b in zip(got, want):
        assert a.dtype == torch.bfloat16
        torch.testing.assert_close(a.float(), b.float(), rtol=2e-2, atol=2e-2)


def test_a_marked_tensor_is_saved_as_a_recipe_and_rebuilt():
    rebuilt = []
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
    with Recomputables().active():
        y = x.exp()  # exp saves its output before it is marked: kept as it is
        mark(y, lambda: rebuilt.append(1) or x.detach().exp())  # the matmul saves y for w's gradient: a recipe
        unmarked = x.sin()
        loss = (y @ w).sum() + (unmarked @ w).sum()
    loss.backward()
    assert len(rebuilt) == 1
    torch.testing.assert_close(w.grad, (x.exp() + x.sin()).sum(0, keepdim=True).T.expand(3, 3).detach())
    torch.testing.assert_close(x.grad, ((w.sum(1) * x.exp()) + w.sum(1) * x.cos()).detach())


def test_identity_not_address_decides_what_is_rebuilt():
    """A tensor equal in every value to a marked one, but a different tensor, is saved as it is."""
    scope = Recomputables()
    kept = torch.ones(3)
    scope.add(kept, lambda: torch.zeros(3))
    assert scope._pack(kept.clone()) is not None and isinstance(scope._pack(kept.clone()), torch.Tensor)
    assert not isinstance(scope._pack(kept), torch.Tensor)


def _lora_llama(make_model, randomize, dropout=0.1):
    model = make_model("llama").double()
    add_adapter(model, LoraConfig(r=4, alpha=8, dropout=dropout, target_modules="all-linear"))
    randomize(model)  # non-zero B: every adapter path contributes
    model.train()
    return model


def _loss_and_grads(model, tokens, seed=3):
    torch.manual_seed(seed)  # the same dropout masks on both sides
    loss = model(input_ids=tokens, labels=tokens).loss
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    model.zero_grad(set_to_none=True)
    return loss.detach(), grads


@pytest.mark.parametrize("dropout", [0.0, 0.1])
def test_lean_llama_equals_the_plain_one(make_model, randomize, tokens, dropout):
    plain = _lora_llama(make_model, randomize, dropout)
    leaner = copy.deepcopy(plain)
    report = enable_lean_activations(leaner)
    assert (report.norms, report.mlps, report.skipped) == (5, 2, ())  # 2 layers × 2 norms + the final one
    want_loss, want = _loss_and_grads(plain, tokens)
    got_loss, got = _loss_and_grads(leaner, tokens)
    torch.testing.assert_close(got_loss, want_loss, rtol=1e-7, atol=0)
    assert want.keys() == got.keys() and len(got) == 2 * 7 * 2
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=1e-5, atol=1e-7, msg=name)
    assert max(g.abs().max() for g in got.values()) > 1e-3


def test_norm_and_swiglu_outputs_are_not_kept(make_model, randomize, tokens, monkeypatch):
    """Per layer: the attention norm's output read by q/k/v's adapters (3), the MLP norm's by gate/up (2),
    and the SwiGLU product by down's (1) are stored as recipes — except the first layer's attention norm,
    whose input (the frozen embedding's output) needs no gradient, so it records no graph to rebuild from."""
    model = _lora_llama(make_model, randomize)
    enable_lean_activations(model)
    packed = {"recipes": 0}
    original = Recomputables._pack

    def counting(self, tensor):
        out = original(self, tensor)
        packed["recipes"] += not isinstance(out, torch.Tensor)
        return out

    monkeypatch.setattr(Recomputables, "_pack", counting)
    model(input_ids=tokens, labels=tokens).loss.backward()
    assert packed["recipes"] == 2 * (3 + 2 + 1) - 3


def test_inference_and_full_fine_tuning(make_model, randomize, tokens):
    plain = make_model("llama").double()
    leaner = copy.deepcopy(plain)
    enable_lean_activations(leaner)
    with torch.no_grad():  # no graph: the model's own forward runs
        assert torch.equal(leaner(input_ids=tokens).logits, plain(input_ids=tokens).logits)
    want_loss, want = _loss_and_grads(plain.train(), tokens)  # every weight trains, norm weights included
    got_loss, got = _loss_and_grads(leaner.train(), tokens)
    torch.testing.assert_close(got_loss, want_loss, rtol=1e-7, atol=0)
    norm_grads = [n for n in got if "norm" in n]
    assert len(norm_grads) == 5
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=1e-5, atol=1e-7, msg=name)


def test_enable_is_idempotent(make_model):
    model = make_model("llama")
    first = enable_lean_activations(model)
    forward = model.model.layers[0].mlp.forward
    assert enable_lean_activations(model) == first
    assert model.model.layers[0].mlp.forward is forward


def test_a_copy_of_a_lean_model_runs_its_own_weights(make_model, randomize, tokens):
    model = _lora_llama(make_model, randomize)
    enable_lean_activations(model)
    duplicate = copy.deepcopy(model)
    with torch.no_grad():
        duplicate.model.layers[1].mlp.down_proj.lora_B["default"].add_(1.0)
        duplicate.model.layers[0].input_layernorm.weight.mul_(2.0)
    torch.manual_seed(0)
    before = model(input_ids=tokens).logits
    torch.manual_seed(0)
    changed = duplicate(input_ids=tokens).logits  # with gradients: the lean forwards run
    torch.manual_seed(0)
    assert torch.equal(model(input_ids=tokens).logits, before)
    assert not torch.allclose(changed, before)
    assert duplicate.model.layers[1].mlp.forward.__self__ is duplicate.model.layers[1].mlp


class OffsetRMSNorm(nn.Module):
    """A Gemma-style norm, w + 1: it looks like an RMSNorm but computes something else."""

    def __init__(self, width):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(width))
        self.variance_epsilon = 1e-6

    def forward(self, x):
        return (1 + self.weight) * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.variance_epsilon)


def test_a_module_whose_forward_differs_is_left_alone(make_model):
    model = make_model("llama")
    model.model.norm = OffsetRMSNorm(32)
    forward = model.model.norm.forward
    report = enable_lean_activations(model)
    assert report.skipped == ("OffsetRMSNorm",) and report.norms == 4
    assert model.model.norm.forward == forward


def test_gpt2_has_nothing_to_make_lean(make_model):
    assert enable_lean_activations(make_model("gpt2")) == lean.LeanReport(0, 0, ())


def test_one_rebuild_per_norm_output_however_many_adapters_read_it(make_model, randomize, tokens, monkeypatch):
    """q, k and v's adapters all keep the attention norm's output: backward rebuilds it once, not three times."""
    model = _lora_llama(make_model, randomize)
    enable_lean_activations(model)
    loss = model(input_ids=tokens, labels=tokens).loss
    rebuilt = []
    real = lean._normalised
    monkeypatch.setattr(lean, "_normalised", lambda *a: rebuilt.append(1) or real(*a))
    loss.backward()
    assert len(rebuilt) == 3  # layer 1's attention norm, both MLP norms (layer 0's attention norm: no graph)
