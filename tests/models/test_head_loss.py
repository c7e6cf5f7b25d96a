"""The fused head + cross-entropy against the two-step float64 computation it replaces."""

import pytest
import torch
import torch.nn.functional as F

from loralab.models.head_loss import linear_cross_entropy


def _problem(n=300, d=16, vocab=50, dtype=torch.float64, bias=True, seed=0):
    gen = torch.Generator().manual_seed(seed)
    hidden = torch.randn(n, d, generator=gen, dtype=dtype, requires_grad=True)
    weight = torch.randn(vocab, d, generator=gen, dtype=dtype, requires_grad=True)
    b = torch.randn(vocab, generator=gen, dtype=dtype, requires_grad=True) if bias else None
    targets = torch.randint(0, vocab, (n,), generator=gen)
    return hidden, weight, b, targets


@pytest.mark.parametrize("rows", [7, 64, 1000])  # blocks that do not divide N, and a single block
def test_loss_and_gradients_equal_the_logits_path_in_float64(rows):
    hidden, weight, bias, targets = _problem()
    fused = linear_cross_entropy(hidden, weight, bias, targets, rows=rows)
    plain = F.cross_entropy(F.linear(hidden, weight, bias), targets, reduction="sum")
    torch.testing.assert_close(fused, plain, rtol=1e-12, atol=0)
    want = torch.autograd.grad(2.5 * plain, (hidden, weight, bias))
    got = torch.autograd.grad(2.5 * fused, (hidden, weight, bias))
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
        assert b.abs().max() > 0.1


def test_a_frozen_head_gets_no_gradient_and_keeps_nothing_vocab_wide():
    hidden, weight, _, targets = _problem(bias=False)
    weight.requires_grad_(False)
    loss = linear_cross_entropy(hidden, weight, None, targets, rows=32)
    saved = loss.grad_fn.saved_tensors
    assert [t.shape for t in saved] == [hidden.shape]  # ∂loss/∂h only: no (N, vocab) tensor
    (grad,) = torch.autograd.grad(loss, hidden)
    (want,) = torch.autograd.grad(F.cross_entropy(hidden @ weight.T, targets, reduction="sum"), hidden)
    torch.testing.assert_close(grad, want, rtol=1e-10, atol=1e-12)


def test_bf16_autocast_matches_the_head_then_float32_cross_entropy():
    hidden, weight, bias, targets = _problem(dtype=torch.float32, vocab=200)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fused = linear_cross_entropy(hidden, weight, bias, targets, rows=50)
        plain = F.cross_entropy(F.linear(hidden, weight, bias).float(), targets, reduction="sum")
    torch.testing.assert_close(fused, plain, rtol=1e-5, atol=1e-3)
    want = torch.autograd.grad(plain, (hidden, weight, bias))
    got = torch.autograd.grad(fused, (hidden, weight, bias))
    for a, b in zip(got, want):
        assert a.dtype == b.dtype == torch.float32
        torch.testing.assert_close(a, b, rtol=2e-2, atol=2e-2)
