"""The NF4 code book: the published 16 values, rebuilt from normal quantiles; nibble packing."""

import torch

from loralab.quant.codebook import NF4, nf4_codebook, nf4_from_normal_quantiles, nf4_pair_table
from loralab.quant.pack import pack_nibbles, unpack_nibbles

PUBLISHED = [
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
    -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
    0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
    0.7229568362236023, 1.0,
]  # fmt: skip


def test_codebook_is_the_published_table():
    assert list(NF4) == PUBLISHED
    assert nf4_codebook().tolist() == PUBLISHED  # every value is exactly a float32


def test_codebook_from_normal_quantiles():
    """8 positive quantiles at linspace(δ, ½, 9)[:-1], 7 negative at linspace(δ, ½, 8)[:-1], and 0."""
    rebuilt = nf4_from_normal_quantiles()
    assert len(rebuilt) == 16 and rebuilt[7] == 0.0 and rebuilt[0] == -1.0 and rebuilt[-1] == 1.0
    assert max(abs(a - b) for a, b in zip(rebuilt, PUBLISHED)) < 1e-6  # measured 1.9e-7 (float32 rounding)
    # the paper's rounded offset 0.9677 gives the same table to 1e-4 only
    assert max(abs(a - b) for a, b in zip(nf4_from_normal_quantiles(0.9677), PUBLISHED)) < 1e-4


def test_pair_table_maps_a_byte_to_its_two_values():
    table = nf4_pair_table()
    assert table.shape == (256, 2)
    assert table[0x3C].tolist() == [PUBLISHED[3], PUBLISHED[12]]


def test_nibbles_pack_high_first_and_round_trip():
    codes = torch.tensor([1, 2, 3, 4, 15, 0], dtype=torch.uint8)
    packed = pack_nibbles(codes)
    assert packed.tolist() == [0x12, 0x34, 0xF0]
    every = torch.arange(16, dtype=torch.uint8).repeat_interleave(16)
    every = torch.stack([every, torch.arange(16, dtype=torch.uint8).repeat(16)], 1).reshape(-1)
    assert torch.equal(unpack_nibbles(pack_nibbles(every)), every)
