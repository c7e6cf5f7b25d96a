"""The CUDA training path against the CPU one and against itself (fused AdamW, compiled layers, QLoRA, Liger,
the fused LoRA and DoRA linears).

Skipped without a CUDA GPU: the machines of CI have none. Run on a lent GPU with
``.venv/bin/python -m pytest tests/train/test_cuda_paths.py`` (issue #17).
"""

import importlib.util
import json

import pytest
import torch

from loralab.train.trainer import train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (run on a lent GPU, issue #17)")


def _losses(run_dir):
    return [json.loads(line)["loss"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(autouse=True)
def exact_matmuls():
    """No TF32: float32 products on the GPU as on the CPU (to rounding)."""
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32 = previous


@pytest.mark.parametrize("method", [("method=lora",), ("method=qlora", "quant.compute_dtype=float32"), ("method=full", "~lora", "optimizer.lr=1e-3")])
def test_a_run_on_cuda_trains_as_on_the_cpu(make_recipe, method):
    steps = ("train.max_steps=4", "lora.dropout=0.0") if "method=full" not in method else ("train.max_steps=4",)
    cpu = train(make_recipe(*method, *steps, "name=cpu"), progress=False)
    gpu = train(make_recipe(*method, *steps, "name=gpu", "train.device=cuda"), progress=False)
    assert _losses(gpu.run_dir) == pytest.approx(_losses(cpu.run_dir), rel=1e-4)
    record = json.loads((gpu.run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["peak_memory_mb"] > 0  # torch.cuda.max_memory_allocated


NEEDS_LIGER = pytest.mark.skipif(importlib.util.find_spec("liger_kernel") is None, reason="needs liger-kernel (pip install loralab[gpu])")
OPTIONS = [  # (what it changes from the plain CUDA run, relative tolerance of the losses)
    pytest.param("optimizer.implementation=foreach", 1e-5, id="fused AdamW (the CUDA default) vs foreach"),
    pytest.param("train.compile=true", 1e-4, id="compiled layers vs eager"),
    pytest.param("train.precision=bf16", 3e-2, id="bf16 vs fp32"),
    pytest.param("train.liger_kernels=true", 1e-3, id="Liger's kernels vs the plain path", marks=NEEDS_LIGER),
]


@pytest.mark.parametrize("option, rel", OPTIONS)
def test_an_option_on_cuda_trains_as_the_plain_cuda_run(make_recipe, option, rel):
    common = ("train.max_steps=4", "lora.dropout=0.0", "train.device=cuda")
    plain = train(make_recipe(*common, "name=plain"), progress=False)
    changed = train(make_recipe(*common, "name=changed", option), progress=False)
    assert _losses(changed.run_dir) == pytest.approx(_losses(plain.run_dir), rel=rel)


@NEEDS_LIGER
@pytest.mark.parametrize("autocast", [False, True])
def test_liger_fused_linear_cross_entropy_equals_loralabs_head_loss(autocast):
    from loralab.models.head_loss import linear_cross_entropy
    from loralab.models.liger import liger_linear_cross_entropy

    gen = torch.Generator(device="cuda").manual_seed(0)
    hidden = torch.randn(300, 64, device="cuda", generator=gen, requires_grad=True)
    weight = (torch.randn(1000, 64, device="cuda", generator=gen) / 8).requires_grad_(True)
    targets = torch.randint(0, 1000, (300,), device="cuda", generator=gen)
    results = []
    for loss_fn in (liger_linear_cross_entropy, linear_cross_entropy):
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
            loss = loss_fn(hidden, weight, None, targets)
        loss.backward()
        results.append([loss.detach(), hidden.grad.clone(), weight.grad.clone()])
        hidden.grad = weight.grad = None
    for got, want in zip(*results):
        torch.testing.assert_close(got.float(), want.float(), rtol=2e-2 if autocast else 1e-4, atol=1e-3 if autocast else 1e-5)


@pytest.mark.parametrize("variant", ["lora", "dora"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_fused_lora_linear_on_cuda_equals_the_separate_path(dtype, variant):
    from torch import nn

    from loralab.lora.layers import AdapterSpec, LoraLinear

    layer = LoraLinear(nn.Linear(256, 192).to("cuda", dtype).requires_grad_(False))
    layer.add("a", AdapterSpec(r=16, scale=2.0, dropout=0.1, variant=variant))
    with torch.no_grad():
        layer.lora_B["a"].normal_()
        for magnitude in layer.variant_params["a"].values():  # DoRA: a length that is not ‖W + ΔL‖
            magnitude.mul_(1.5)
    layer.set_active(["a"])
    x, grad = torch.randn(8, 64, 256, device="cuda", dtype=dtype), torch.randn(8, 64, 192, device="cuda", dtype=dtype)
    results = []
    for fused in (True, False):
        layer.fused = fused
        x_in = x.clone().requires_grad_(True)
        torch.manual_seed(3)
        layer(x_in).backward(grad)
        parameters = layer.adapter_parameters("a")
        results.append([x_in.grad, *(p.grad.clone() for p in parameters)])
        for p in parameters:
            p.grad = None
    for got, want in zip(*results):
        torch.testing.assert_close(got.float(), want.float(), rtol=2e-2 if dtype == torch.bfloat16 else 1e-4, atol=1e-2 if dtype == torch.bfloat16 else 1e-5)
