"""The LoRA layers against hand-computed references."""

import pytest
import torch
from torch import nn
from transformers.pytorch_utils import Conv1D

from loralab.lora.delta import adapter_output, delta_weight
from loralab.lora.dropout_path import dropout_then_project, keep_mask
from loralab.lora.layers import AdapterSpec, LoraConv1D, LoraEmbedding, LoraLinear


def _layer(kind, dtype=torch.float32):
    torch.manual_seed(0)
    if kind == "linear":
        layer = LoraLinear(nn.Linear(6, 5).to(dtype))
    elif kind == "conv1d":
        layer = LoraConv1D(Conv1D(5, 6).to(dtype))  # Conv1D(nf=out, nx=in): weight (6, 5)
    else:
        layer = LoraEmbedding(nn.Embedding(11, 5).to(dtype))
    layer.add("a", AdapterSpec(r=3, scale=1.5))
    with torch.no_grad():
        layer.lora_A["a"].normal_()
        layer.lora_B["a"].normal_()
    layer.set_active(["a"])
    return layer


def _input(kind, dtype=torch.float32):
    return torch.randint(0, 11, (4, 3)) if kind == "embedding" else torch.randn(4, 3, 6, dtype=dtype)


@pytest.mark.parametrize("kind", ["linear", "conv1d", "embedding"])
def test_forward_is_base_plus_scaled_BA(kind):
    layer = _layer(kind)
    x = _input(kind)
    A, B = layer.lora_A["a"].detach(), layer.lora_B["a"].detach()
    if kind == "embedding":
        onehot = nn.functional.one_hot(x, 11).float()
        expected = layer.base_layer(x) + 1.5 * onehot @ A.T @ B.T
    else:
        expected = layer.base_layer(x) + 1.5 * x @ A.T @ B.T
    torch.testing.assert_close(layer(x), expected)


@pytest.mark.parametrize("kind", ["linear", "conv1d", "embedding"])
def test_merge_unmerge_idempotent(kind):
    layer = _layer(kind)
    x = _input(kind)
    weight0 = layer.base_layer.weight.detach().clone()
    unmerged = layer(x)
    layer.merge(["a"])
    merged = layer(x)
    layer.merge(["a"])  # twice: no effect
    torch.testing.assert_close(layer(x), merged)
    torch.testing.assert_close(merged, unmerged, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(layer.base_layer.weight, weight0)
    layer.unmerge()
    layer.unmerge()
    torch.testing.assert_close(layer.base_layer.weight, weight0, atol=1e-6, rtol=0)
    torch.testing.assert_close(layer(x), unmerged)


def test_merged_layer_costs_the_base_layer_only():
    layer = _layer("linear")
    layer.merge(["a"])
    calls = []
    orig = layer.low_rank_output
    layer.low_rank_output = lambda *a: calls.append(1) or orig(*a)
    layer(torch.randn(2, 6))
    assert calls == []


def test_merge_not_tied_to_train_eval():
    layer = _layer("linear")
    w0 = layer.base_layer.weight.detach().clone()
    layer.eval()
    layer.train()
    torch.testing.assert_close(layer.base_layer.weight, w0)
    layer.merge(["a"])
    w1 = layer.base_layer.weight.detach().clone()
    layer.train()
    layer.eval()
    torch.testing.assert_close(layer.base_layer.weight, w1)


def test_delta_weight_hand_computed():
    A = torch.tensor([[1.0, 2.0, 0.0], [0.0, 1.0, -1.0]])  # r=2, d_in=3
    B = torch.tensor([[1.0, 0.0], [2.0, 1.0]])  # d_out=2
    expected = 0.5 * torch.tensor([[1.0, 2.0, 0.0], [2.0, 5.0, -1.0]])
    torch.testing.assert_close(delta_weight(A, B, 0.5), expected)
    torch.testing.assert_close(delta_weight(A, B, 0.5, transposed=True), expected.T)


def test_gradcheck_float64():
    A = torch.randn(3, 6, dtype=torch.float64, requires_grad=True)
    B = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    x = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, A, B: adapter_output(x, A, B, 0.7, 0.0), (x, A, B))


def test_dropout_path_gradients_match_plain_dropout():
    """The memory-lean dropout path equals F.linear(F.dropout(x), A) with the same mask."""
    x = torch.randn(7, 6, dtype=torch.float64, requires_grad=True)
    A = torch.randn(3, 6, dtype=torch.float64, requires_grad=True)
    torch.manual_seed(5)
    h = dropout_then_project(x, A, 0.3)
    torch.manual_seed(5)
    keep, p_used = keep_mask(x, 0.3)
    x2, A2 = x.detach().clone().requires_grad_(), A.detach().clone().requires_grad_()
    ref = (x2 * keep.bool() / (1 - p_used)) @ A2.T
    torch.testing.assert_close(h, ref)
    g = torch.randn_like(h)
    h.backward(g)
    ref.backward(g)
    torch.testing.assert_close(x.grad, x2.grad)
    torch.testing.assert_close(A.grad, A2.grad)
    assert (h != x.detach() @ A.detach().T).any()  # dropout did drop something


@pytest.mark.parametrize("p", [0.05, 0.3, 0.5])
def test_keep_mask_drops_with_probability_p(p):
    """Each element is dropped with probability p (to 2⁻¹⁶), independently of its position in a 64-bit word."""
    keep, p_used = keep_mask(torch.empty(400, 1001), p)  # an odd size: the last word is partly unused
    assert keep.dtype == torch.uint8 and keep.shape == (400, 1001) and set(keep.unique().tolist()) == {0, 1}
    assert abs(p_used - p) <= 2**-17
    dropped = 1.0 - keep.double()
    n = dropped.numel()
    tolerance = 5 * (p * (1 - p) / (n / 4)) ** 0.5  # five standard errors of a quarter of the draws
    assert abs(float(dropped.mean()) - p_used) < tolerance
    lanes = dropped.flatten()[: n - n % 4].view(-1, 4).mean(0)  # the four 16-bit lanes of each random word
    assert (lanes - p_used).abs().max() < tolerance
    neighbours = (dropped.flatten()[1:] * dropped.flatten()[:-1]).mean()  # no correlation between adjacent elements
    assert abs(float(neighbours) - p_used**2) < tolerance


def test_dropout_only_in_training_and_only_on_adapter_path():
    layer = _layer("linear")
    layer.specs["a"] = AdapterSpec(r=3, scale=1.5, dropout=0.5)
    x = torch.randn(50, 6)
    layer.eval()
    torch.testing.assert_close(layer(x), layer(x))
    layer.train()
    out = layer(x)
    assert not torch.allclose(out, layer(x))  # random masks differ
    with torch.no_grad():
        layer.lora_B["a"].zero_()
    torch.testing.assert_close(layer(x), layer.base_layer(x))  # base path never dropped


def test_bf16_base_with_fp32_input_cast():
    layer = _layer("linear", torch.bfloat16)
    out = layer(torch.randn(2, 6, dtype=torch.bfloat16))
    assert out.dtype == torch.bfloat16
