"""Blockwise NF4 quantization of a weight (QLoRA, Dettmers et al. 2023, §3).

The weight is flattened (row-major) and cut into blocks of ``block_size`` consecutive
elements (block_size must divide the number of elements; blocks may cross rows). For block
j with absmax c_j = max |w| over the block, each element becomes the index of the nearest
NF4 value to w / c_j; dequantization is ŵ = NF4[code] · c_j. A block of zeros has c_j = 0
and dequantizes to zeros. Codes are packed two per byte (``pack.py``).
"""

from __future__ import annotations

import torch

from loralab.quant.codebook import nf4_codebook, nf4_pair_words
from loralab.quant.pack import pack_nibbles


def quantize_nf4(weight: torch.Tensor, block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(packed codes (numel/2,) uint8, absmax (numel/block_size,) float32) of ``weight``.

    Rounds to the nearest code (ties to the lower one); computed in float32.
    """
    blocks = weight.detach().reshape(-1, block_size).to(torch.float32)
    absmax = blocks.abs().amax(dim=1)
    normalised = blocks / torch.where(absmax > 0, absmax, 1.0)[:, None]
    book = nf4_codebook(weight.device)
    midpoints = (book[1:] + book[:-1]) / 2
    codes = torch.bucketize(normalised, midpoints).to(torch.uint8)
    return pack_nibbles(codes.reshape(-1)), absmax


def dequantize_nf4(packed: torch.Tensor, absmax: torch.Tensor, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """ŵ = NF4[code] · absmax of its block, reshaped to ``shape`` (multiplied in float32, written in ``dtype``).

    One 1-D gather per byte of 8-byte words, each the byte's two float32 values
    (``nf4_pair_words``), then one multiply writing straight into the output dtype.
    """
    words = torch.gather(nf4_pair_words(packed.device), 0, packed.to(torch.int64))  # (numel/2,) int64
    blocks = words.view(torch.float32).reshape(absmax.shape[0], -1)
    out = torch.empty(blocks.shape, dtype=dtype, device=packed.device)
    return torch.mul(blocks, absmax[:, None], out=out).reshape(shape)
