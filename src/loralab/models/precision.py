"""The compute precision a run uses: ``fp32``, ``bf16`` (autocast), or ``auto``, which picks what the device
computes natively.

``auto`` is bf16 on a GPU that supports it and on a CPU with bf16 instructions (AVX512-BF16 or AMX-BF16),
and fp32 everywhere else: without those instructions a CPU emulates bf16, and a bf16 matmul is tens of
times slower than fp32 (1200×576 @ 576×1536 on a 2-core AVX2 CPU: 1,705 ms against 38.6 ms).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import torch

from loralab.errors import ConfigError

PRECISIONS = ("auto", "fp32", "bf16")


@dataclass(frozen=True)
class Precision:
    """The precision chosen (``fp32`` or ``bf16``) and why, in words."""

    name: str
    reason: str

    def describe(self, requested: str) -> str:
        return f"precision {requested} → {self.name} ({self.reason})" if requested == "auto" else f"precision {self.name}"


def resolve_precision(requested: str, device: torch.device | str) -> Precision:
    """``fp32`` / ``bf16`` as asked, or for ``auto`` whichever the device computes natively."""
    if requested not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {requested!r}")
    if requested != "auto":
        return Precision(requested, "as the recipe says")
    device = torch.device(device)
    native, why = native_bf16(device.type)
    return Precision("bf16" if native else "fp32", why)


def native_bf16(device_type: str) -> tuple[bool, str]:
    """(whether the device computes bf16 natively, the evidence in words)."""
    if device_type == "cuda":
        if torch.cuda.is_bf16_supported():
            return True, f"{torch.cuda.get_device_name()} computes bf16"
        return False, f"{torch.cuda.get_device_name()} has no bf16"
    return _cpu_native_bf16()


@functools.lru_cache(maxsize=1)
def _cpu_native_bf16() -> tuple[bool, str]:
    flags = cpu_flags()
    if flags is None:
        return False, "could not read this CPU's instruction sets; fp32 is the safe choice"
    found = sorted({"avx512_bf16", "amx_bf16"} & flags)
    if found:
        return True, f"this CPU has {' and '.join(f.upper().replace('_', '-') for f in found)}"
    return False, "this CPU has no AVX512-BF16 or AMX-BF16, so bf16 would be emulated, tens of times slower"


def cpu_flags() -> set[str] | None:
    """The CPU's bf16-relevant features as lower-case names (``avx512_bf16``, ``amx_bf16``), or None if unknown."""
    capabilities = getattr(torch.cpu, "get_capabilities", None)
    if capabilities is not None:
        try:
            return {name for name, present in capabilities().items() if present is True}
        except Exception:  # noqa: BLE001 - an unexpected platform answer: fall through to /proc/cpuinfo
            pass
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return None
