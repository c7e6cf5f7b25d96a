"""The 4-bit NormalFloat (NF4) code book of QLoRA (Dettmers et al. 2023, §3).

16 values in [-1, 1], each an equal-probability quantile of N(0, 1) rescaled so that the
largest is 1, with an exact 0: 8 positive values from the quantiles at
linspace(δ, 1/2, 9)[:-1], 7 negative ones from linspace(δ, 1/2, 8)[:-1] (negated), and 0,
where δ = ½((1 − 1/30) + (1 − 1/32)) = 0.9677083 is the paper's offset (the quantile at 1
would be ∞; δ averages the outermost bin centres of 15 and 16 equal bins).
``NF4`` is the published table (as in bitsandbytes); ``nf4_from_normal_quantiles`` rebuilds it.
"""

from __future__ import annotations

import functools
from statistics import NormalDist

import torch

#: The published NF4 values, ascending; a 4-bit code is an index into this tuple.
NF4: tuple[float, ...] = (
    -1.0,
    -0.6961928009986877,
    -0.5250730514526367,
    -0.39491748809814453,
    -0.28444138169288635,
    -0.18477343022823334,
    -0.09105003625154495,
    0.0,
    0.07958029955625534,
    0.16093020141124725,
    0.24611230194568634,
    0.33791524171829224,
    0.44070982933044434,
    0.5626170039176941,
    0.7229568362236023,
    1.0,
)

#: The paper's offset δ, the largest quantile probability used (½((1 − 1/30) + (1 − 1/32))).
NF4_OFFSET = 0.5 * ((1 - 1 / 30) + (1 - 1 / 32))


def nf4_from_normal_quantiles(offset: float = NF4_OFFSET) -> list[float]:
    """The NF4 values rebuilt from N(0, 1) quantiles in float64 (ascending, max normalised to 1)."""
    inv_cdf = NormalDist().inv_cdf

    def linspace(start: float, stop: float, n: int) -> list[float]:
        return [start + (stop - start) * i / (n - 1) for i in range(n)]

    positive = [inv_cdf(p) for p in linspace(offset, 0.5, 9)[:-1]]
    negative = [-inv_cdf(p) for p in linspace(offset, 0.5, 8)[:-1]]
    values = sorted(positive + negative + [0.0])
    top = max(abs(v) for v in values)
    return [v / top for v in values]


def nf4_codebook(device: torch.device | str | None = None) -> torch.Tensor:
    """The 16 NF4 values as a float32 tensor (16,)."""
    return torch.tensor(NF4, dtype=torch.float32, device=device)


def nf4_pair_table(device: torch.device | str | None = None) -> torch.Tensor:
    """(256, 2) float32: row b holds the values of byte b's two codes (high nibble first)."""
    book = nf4_codebook(device)
    byte = torch.arange(256, device=device)
    return torch.stack([book[byte >> 4], book[byte & 0xF]], dim=1)


@functools.cache
def nf4_codebook_on(device: torch.device) -> torch.Tensor:
    """``nf4_codebook`` on ``device``, made once (a new host-to-GPU copy per call would wait for the GPU)."""
    return nf4_codebook(device)


@functools.cache
def nf4_pair_words(device: torch.device) -> torch.Tensor:
    """``nf4_pair_table`` with each row's two float32 values reinterpreted as one int64 word: (256,).

    A 1-D gather of 8-byte words is the cheapest lookup (and the bytes are only copied, never
    read as integers, so the byte order does not matter). Built once per device.
    """
    return nf4_pair_table(device).view(torch.int64).reshape(256)
