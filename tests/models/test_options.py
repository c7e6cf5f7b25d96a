"""The dtype and device options, on the fast tiny models."""

import pytest
import torch

from loralab.errors import ModelLoadError
from loralab.models import load_model
from loralab.models.device import resolve_device
from loralab.models.dtype import resolve_dtype


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("float32", torch.float32),
        ("fp32", torch.float32),
        ("bfloat16", torch.bfloat16),
        ("BF16", torch.bfloat16),
        ("float16", torch.float16),
        ("fp16", torch.float16),
        (torch.bfloat16, torch.bfloat16),
        (torch.float16, torch.float16),
    ],
)
def test_dtype_names_and_torch_dtypes(given, expected):
    assert resolve_dtype(given) is expected


@pytest.mark.parametrize("bad", ["float64", "int8", "", torch.int8, torch.float64, 32])
def test_unknown_dtype_lists_the_options(bad):
    with pytest.raises(ModelLoadError) as error:
        resolve_dtype(bad)
    for option in ("float32", "bf16", "float16"):
        assert option in str(error.value)


@pytest.mark.parametrize("dtype", ["bf16", torch.float16, "fp32"])
@pytest.mark.parametrize("name", ["tiny-llama", "tiny-gpt2"])
def test_load_model_casts_to_the_dtype(name, dtype):
    model, _ = load_model(name, dtype=dtype)
    assert {p.dtype for p in model.parameters()} == {resolve_dtype(dtype)}


def test_cpu_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.parametrize("device", ["cuda", "cuda:0", "CUDA:1"])
def test_cuda_when_absent_is_a_clear_error(monkeypatch, device):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ModelLoadError, match="CUDA is not available"):
        resolve_device(device)
    with pytest.raises(ModelLoadError, match="device='cpu'"):
        load_model("tiny-llama", device=device)


def test_cuda_index_past_the_last_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("cuda") == torch.device("cuda", 0)
    with pytest.raises(ModelLoadError, match="1 GPU"):
        resolve_device("cuda:1")


@pytest.mark.parametrize("bad", ["gpu", "tpu", "cpu:1", "cuda:x", "mps"])
def test_unknown_device_lists_the_options(bad):
    with pytest.raises(ModelLoadError, match="'cuda:N'"):
        resolve_device(bad)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_tiny_model_on_gpu_matches_cpu():
    cpu_model, tokenizer = load_model("tiny-llama")
    gpu_model, _ = load_model("tiny-llama", device="cuda")
    ids = tokenizer("The cat sat", return_tensors="pt").input_ids
    with torch.no_grad():
        torch.testing.assert_close(gpu_model(ids.cuda()).logits.cpu(), cpu_model(ids).logits, atol=1e-4, rtol=1e-4)
