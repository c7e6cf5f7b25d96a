"""Two 4-bit codes per byte: element 2i in the high nibble, element 2i+1 in the low one."""

from __future__ import annotations

import torch


def pack_nibbles(codes: torch.Tensor) -> torch.Tensor:
    """uint8 codes in [0, 16) of even length n → (n/2,) uint8."""
    pairs = codes.reshape(-1, 2)
    return (pairs[:, 0] << 4) | pairs[:, 1]


def unpack_nibbles(packed: torch.Tensor) -> torch.Tensor:
    """(n/2,) uint8 → (n,) uint8 codes, the inverse of ``pack_nibbles``."""
    return torch.stack([packed >> 4, packed & 0xF], dim=1).reshape(-1)
