"""Double quantization of the block absmax scales (QLoRA §3, "Double Quantization").

The first-level scales s (fp32, one per 64-element block; all ≥ 0) are centred by their
mean m and cut into blocks of ``scale_block_size`` (256). The paper stores the centred
scales as 8-bit floats; here they are int8 with absmax linear quantization:
    q_i = round(127 · (s_i − m) / c_k),   c_k = max |s − m| over block k,
    ŝ_i = q_i · c_k / 127 + m.
Stored: q (int8, one per scale), c (fp32, one per 256 scales), m (fp32 scalar), i.e.
8/64 + 32/(64·256) bits per weight on top of the 4-bit codes. The mean and c are computed
in float64 (so that equal scales come back exactly), stored as float32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def quantize_scales(scales: torch.Tensor, block_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(q (n,) int8, c (ceil(n/block_size),) float32, m () float32) for scales (n,)."""
    s = scales.to(torch.float64)
    mean = s.mean()
    centred = _blocks(s - mean, block_size)  # zero-padded to whole blocks
    c = centred.abs().amax(dim=1)
    step = torch.where(c > 0, c, 1.0)[:, None] / 127
    q = torch.round(centred / step).clamp(-127, 127).to(torch.int8)
    return q.reshape(-1)[: s.shape[0]], c.to(torch.float32), mean.to(torch.float32)


def dequantize_scales(q: torch.Tensor, c: torch.Tensor, mean: torch.Tensor, block_size: int) -> torch.Tensor:
    """ŝ (n,) float32 from ``quantize_scales``' output."""
    blocks = _blocks(q.to(torch.float32), block_size) * (c / 127)[:, None] + mean
    return blocks.reshape(-1)[: q.shape[0]]


def _blocks(x: torch.Tensor, block_size: int) -> torch.Tensor:
    """x (n,) zero-padded to a multiple of block_size, as (n_blocks, block_size)."""
    return F.pad(x, (0, -x.shape[0] % block_size)).reshape(-1, block_size)
