"""``train.liger_kernels``: the checks that run everywhere (Liger's kernels themselves run on CUDA only; their
numbers are compared with the plain path in tests/train/test_cuda_paths.py, where a GPU is lent)."""

import importlib.util

import pytest

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
