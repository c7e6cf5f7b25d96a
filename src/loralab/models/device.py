"""Parse the ``device`` option of :func:`loralab.models.load_model`."""

from __future__ import annotations

import re

import torch

from loralab.errors import ModelLoadError

_DEVICE = re.compile(r"(cpu|cuda)(?::(\d+))?")


def resolve_device(device: str | torch.device) -> torch.device:
    """``"cpu"``, ``"cuda"`` or ``"cuda:N"``; CUDA must be available and N < the number of GPUs."""
    match = _DEVICE.fullmatch(str(device).strip().lower())
    if match is None or (match.group(1) == "cpu" and match.group(2) is not None):
        raise ModelLoadError(f"Unsupported device {str(device)!r}. Use 'cpu', 'cuda' or 'cuda:N' (N = GPU index).")
    kind, index = match.group(1), match.group(2)
    if kind == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ModelLoadError(
            f"Device {str(device)!r} was asked for, but CUDA is not available here (no GPU, or a CPU-only PyTorch). "
            "Use device='cpu'."
        )
    count = torch.cuda.device_count()
    if index is not None and int(index) >= count:
        raise ModelLoadError(
            f"Device {str(device)!r} does not exist: this machine has {count} GPU(s), cuda:0 to cuda:{count - 1}."
        )
    return torch.device("cuda", int(index) if index is not None else 0)
