"""precision: auto picks bf16 exactly where the device computes it natively."""

from pathlib import Path

import pytest
import torch

from loralab.errors import ConfigError
from loralab.models import precision as precision_module
from loralab.models.precision import cpu_flags, resolve_precision


@pytest.mark.parametrize("native, expected", [(True, "bf16"), (False, "fp32")])
def test_auto_follows_the_capability_check(monkeypatch, native, expected):
    monkeypatch.setattr(precision_module, "_cpu_native_bf16", lambda: (native, "mocked"))
    chosen = resolve_precision("auto", "cpu")
    assert chosen.name == expected
    assert chosen.describe("auto") == f"precision auto → {expected} (mocked)"


@pytest.mark.parametrize("asked", ["fp32", "bf16"])
def test_explicit_precision_is_kept_whatever_the_device(monkeypatch, asked):
    monkeypatch.setattr(precision_module, "_cpu_native_bf16", lambda: (asked == "fp32", "mocked"))
    assert resolve_precision(asked, "cpu").name == asked


def test_unknown_precision_is_a_config_error():
    with pytest.raises(ConfigError, match="precision must be one of auto, fp32, bf16"):
        resolve_precision("fp16", "cpu")


@pytest.mark.parametrize("flags, native", [({"avx2", "avx512_bf16"}, True), ({"avx2", "amx_bf16"}, True),
                                           ({"avx2", "avx512_f", "fma3"}, False)])  # fmt: skip
def test_cpu_check_reads_the_bf16_instruction_sets(monkeypatch, flags, native):
    monkeypatch.setattr(precision_module, "cpu_flags", lambda: flags)
    assert precision_module._cpu_native_bf16.__wrapped__()[0] is native


def test_unreadable_cpu_means_fp32(monkeypatch):
    monkeypatch.setattr(precision_module, "cpu_flags", lambda: None)
    native, reason = precision_module._cpu_native_bf16.__wrapped__()
    assert native is False and "could not read" in reason


@pytest.mark.skipif(not Path("/proc/cpuinfo").is_file(), reason="needs Linux's /proc/cpuinfo as the independent answer")
def test_this_cpu_agrees_with_proc_cpuinfo():
    """torch's capability table and the kernel's flag list agree on this machine's bf16 instructions."""
    kernel_flags = set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            kernel_flags = set(line.split(":", 1)[1].split())
            break
    ours = cpu_flags()
    for flag in ("avx512_bf16", "amx_bf16"):
        assert (flag in ours) == (flag in kernel_flags)


def test_cuda_check_asks_the_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Old GPU")
    chosen = resolve_precision("auto", "cuda")
    assert chosen.name == "fp32" and "Old GPU" in chosen.reason
