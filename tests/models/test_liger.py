"""``train.liger_kernels``: the checks that run everywhere (Liger's kernels themselves run on CUDA only, so its fused
linear + cross-entropy is stood in for by plain PyTorch with its signature here; their
numbers are compared with the plain path in tests/train/test_cuda_paths.py, where a GPU is lent)."""

import importlib.util

import pytest
import torch

from loralab.errors import ConfigError
from loralab.models.liger import check_liger, use_liger_kernels
from loralab.models.tiny import tiny_model


def test_liger_off_cuda_is_refused():
    with pytest.raises(ConfigError, match="train.liger_kernels: Liger's kernels are Triton kernels for CUDA GPUs, and train.device is cpu"):
        check_liger("cpu")


def test_liger_missing_names_the_package(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "liger_kernel" else real(name, *a))
    with pytest.raises(ConfigError, match=r"pip install liger-kernel \(or loralab\[gpu\]\)"):
        check_liger("cuda")


def test_liger_on_a_model_that_is_no_llama_is_refused():
    with pytest.raises(ConfigError, match="Llama-family models, and this one is gpt2"):
        use_liger_kernels(tiny_model("gpt2"))


@pytest.fixture
def stand_in_liger(monkeypatch):
    """``liger_kernel.transformers.functional.liger_fused_linear_cross_entropy`` replaced by plain PyTorch with its
    signature (the Triton kernel needs CUDA): records the dtypes and shapes it is called with."""
    import sys
    import types

    import torch.nn.functional as F

    calls = []

    def liger_fused_linear_cross_entropy(input, weight, target, bias=None, ce_weight=None, ignore_index=-100,
                                         lse_square_scale=0.0, label_smoothing=0.0, reduction="mean", **rest):  # fmt: skip
        calls.append((tuple(input.shape), input.dtype, weight.dtype, reduction, torch.is_autocast_enabled("cpu")))
        return F.cross_entropy(F.linear(input, weight, bias).float(), target, ignore_index=ignore_index, reduction=reduction)

    functional = types.ModuleType("liger_kernel.transformers.functional")
    functional.liger_fused_linear_cross_entropy = liger_fused_linear_cross_entropy
    for name in ("liger_kernel", "liger_kernel.transformers"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "liger_kernel.transformers.functional", functional)
    return calls


@pytest.mark.parametrize("autocast", [False, True])
def test_liger_head_loss_keeps_loralabs_contract(stand_in_liger, autocast):
    """Summed loss and gradients equal loralab's blocks of rows; under autocast Liger gets h and W in bf16, autocast off."""
    from loralab.models.head_loss import linear_cross_entropy
    from loralab.models.liger import liger_linear_cross_entropy

    gen = torch.Generator().manual_seed(0)
    hidden = torch.randn(10, 16, generator=gen, requires_grad=True)
    weight = torch.randn(40, 16, generator=gen, requires_grad=True)
    bias = torch.randn(40, generator=gen, requires_grad=True)
    targets = torch.randint(0, 40, (10,), generator=gen)
    results = []
    for loss_fn in (liger_linear_cross_entropy, linear_cross_entropy):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            loss = loss_fn(hidden, weight, bias, targets)
        loss.backward()
        results.append([loss.detach()] + [t.grad.clone() for t in (hidden, weight, bias)])
        for t in (hidden, weight, bias):
            t.grad = None
    dtype = torch.bfloat16 if autocast else torch.float32
    assert stand_in_liger == [((10, 16), dtype, dtype, "sum", False)]
    assert results[0][0].dtype == torch.float32
    for got, want in zip(*results):
        torch.testing.assert_close(got, want, rtol=2e-2 if autocast else 1e-5, atol=1e-2 if autocast else 1e-5)


def test_with_liger_kernels_the_objective_uses_liger_on_the_labelled_positions(stand_in_liger, data_file):
    from types import SimpleNamespace

    from loralab.data import PaddingCollator, build_dataset
    from loralab.models import load_model
    from loralab.train.model_setup import head_loss_for
    from loralab.train.objectives import SupervisedObjective

    model, tokenizer = load_model("tiny-llama")
    batch = PaddingCollator.for_tokenizer(tokenizer)(list(build_dataset(str(data_file), tokenizer, max_length=64))[:4])
    assert head_loss_for(SimpleNamespace(train=SimpleNamespace(liger_kernels=False))) is None
    liger = SupervisedObjective(head_loss_for(SimpleNamespace(train=SimpleNamespace(liger_kernels=True))))
    out = liger(model, batch)
    assert stand_in_liger == [((out.normaliser, model.config.hidden_size), torch.float32, torch.float32, "sum", False)]
    torch.testing.assert_close(out.loss_sum, SupervisedObjective()(model, batch).loss_sum, rtol=1e-5, atol=1e-5)
