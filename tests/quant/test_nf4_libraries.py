"""loralab's NF4 against two libraries used as oracles: bitsandbytes and torchao (issue #17).

Both libraries store a weight as loralab does: the flattened weight cut into blocks of 64, one absmax
c per block, each element the index of an NF4 value near w / c, two indices per byte with the FIRST
element in the HIGH nibble (bitsandbytes: ``(q[::2] << 4) | q[1::2]``, returned as (n/2, 1) uint8;
torchao: ``NF4Tensor.quantized_data``, (n/2,) uint8, the same order). Where the formats match, the
codes, the scales and the dequantized weights are compared bit for bit; where they genuinely
differ, the tests pin down exactly where and by how much (see each test's docstring):

* bitsandbytes (CPU, 0.50.2): same code book, same midpoints, same tie rule (a weight exactly on a
  midpoint takes the lower code), same fp32 product Ŵ = NF4[code] · c rounded once to the output
  dtype. Differences: it normalises by the product w · fl(1/c) instead of the quotient w / c, so a
  code differs where that one-ulp difference crosses a midpoint; its double quantization uses its
  8-bit *dynamic* code book for the centred scales (loralab: linear int8); its native CPU
  ``dequantize_4bit`` indexes the scales per row (block r·(d_in // 64) + j // 64), wrong for rows
  that are not a whole number of blocks.
* torchao (0.18.0, ``NF4Tensor``): its code book is the published one rounded to 4 decimals, in the
  weight's dtype; normalisation, nearest-code search, double quantization and dequantization all
  run in the weight's dtype; an all-zero block gets code 0 (0/0 is NaN) and comes back as −ŝ, not
  0; its scales are always double-quantized, with q = clamp(round(128 (s − m)/c₂), −128, 127), so
  the largest scale of a scale block saturates at 127 and comes back a whole step (c₂/128) low.
  Its dequantisation itself (lookup, nibble order, block layout) gives loralab's bits once given
  loralab's table.

Each library is imported through a fixture, so the tests of a library that is missing, or cannot
quantize on this device, are skipped with the reason while the other library's still run.
"""

from __future__ import annotations

import importlib

import pytest
import torch

from loralab.quant.blockwise import dequantize_nf4, quantize_nf4
from loralab.quant.codebook import NF4
from loralab.quant.config import QuantConfig
from loralab.quant.double_quant import dequantize_scales, quantize_scales
from loralab.quant.nf4_linear import NF4Linear
from loralab.quant.pack import unpack_nibbles

BLOCK, SCALE_BLOCK = 64, 256
BOOK = torch.tensor(NF4, dtype=torch.float32)
MIDPOINTS = (BOOK[1:] + BOOK[:-1]) / 2  # the decision boundaries of round-to-nearest, fp32
SOURCE_DTYPES = [torch.float32, torch.bfloat16]
OUT_DTYPES = [torch.float32, torch.bfloat16]


# -- the libraries ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bnb():
    """``bitsandbytes.functional``, if it is installed and quantizes to NF4 on the CPU (≥ 0.46: CPU backend)."""
    pytest.importorskip("bitsandbytes", minversion="0.46", reason="bitsandbytes ≥ 0.46 (CPU NF4 backend) is not installed")
    functional = importlib.import_module("bitsandbytes.functional")
    try:
        packed, state = functional.quantize_4bit(torch.ones(128), blocksize=BLOCK, quant_type="nf4")
        functional.dequantize_4bit(packed, state)
    except Exception as err:  # noqa: BLE001 — any failure means: no NF4 on this device
        pytest.skip(f"bitsandbytes cannot quantize to NF4 on the CPU here: {err}")
    return functional


@pytest.fixture(scope="module")
def torchao_nf4():
    """torchao's NF4 module (``to_nf4``, ``NF4Tensor``, ``get_block_absmax``), if installed and working on the CPU."""
    pytest.importorskip("torchao", reason="torchao is not installed")
    for name in ("torchao.quantization.quantize_.workflows.nf4.nf4_tensor", "torchao.dtypes.nf4tensor"):
        try:
            module = importlib.import_module(name)
            module.to_nf4(torch.ones(64 * SCALE_BLOCK)).get_original_weight()
            return module
        except ImportError:
            continue
        except Exception as err:  # noqa: BLE001
            pytest.skip(f"torchao's NF4Tensor does not run on the CPU here: {err}")
    pytest.skip("this torchao has no NF4Tensor module")


# -- weights ----------------------------------------------------------------------------------------
def _weight(shape: tuple[int, int], dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    """N(0, 1) · column scales over four decades, in ``dtype``; flattened blocks 1–4 (numel ≥ 320) are special:

    block 1 all zeros (absmax 0), block 2 a +1e4 outlier, block 3 a −3e3 outlier, block 4 the 15
    NF4 midpoints and a 1.0 (absmax 1: in fp32 every midpoint is an exact tie).
    """
    w = torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * torch.logspace(-3, 1, shape[1])
    flat = w.view(-1)
    flat[64:128] = 0
    flat[130], flat[200] = 1e4, -3e3
    flat[256:320] = torch.cat([MIDPOINTS, torch.ones(1), torch.zeros(48)])
    return w.to(dtype)


def _normalised(weight: torch.Tensor, absmax: torch.Tensor) -> torch.Tensor:
    """w / c per block in float32, as loralab computes it (flattened; zero blocks divided by 1)."""
    blocks = weight.reshape(-1, BLOCK).to(torch.float32)
    return (blocks / torch.where(absmax > 0, absmax, 1.0)[:, None]).reshape(-1)


def _zero_elements(absmax: torch.Tensor) -> torch.Tensor:
    return (absmax == 0).repeat_interleave(BLOCK)


# -- bitsandbytes -----------------------------------------------------------------------------------
BNB_SHAPES = [(64, 128), (256, 512), (33, 64)]  # d_in a multiple of 64 (see the misindexing test below)


@pytest.mark.parametrize("src", SOURCE_DTYPES)
@pytest.mark.parametrize("shape", BNB_SHAPES)
def test_bitsandbytes_packs_the_same_bytes_and_scales(bnb, shape, src):
    """Same packed bytes (high nibble first) and the same fp32 absmax, bf16 and fp32 weights alike; ties
    (fp32 block 4: w exactly on a midpoint) go to the lower code in both. Double quantization leaves
    the 4-bit codes as they are."""
    weight = _weight(shape, src)
    codes, absmax = quantize_nf4(weight, BLOCK)
    packed, state = bnb.quantize_4bit(weight, blocksize=BLOCK, quant_type="nf4", compress_statistics=False)
    assert packed.shape == (weight.numel() // 2, 1) and packed.dtype == torch.uint8
    assert torch.equal(packed.reshape(-1), codes)
    assert state.absmax.dtype == torch.float32 and torch.equal(state.absmax, absmax)
    assert torch.equal(state.code.cpu(), BOOK)
    if src == torch.float32:
        assert torch.equal(unpack_nibbles(codes)[256:271], torch.arange(15, dtype=torch.uint8))  # midpoint k → code k
    packed_dq, _ = bnb.quantize_4bit(weight, blocksize=BLOCK, quant_type="nf4", compress_statistics=True)
    assert torch.equal(packed_dq.reshape(-1), codes)


@pytest.mark.parametrize("double_quant", [False, True])
@pytest.mark.parametrize("out", OUT_DTYPES)
@pytest.mark.parametrize("src", SOURCE_DTYPES)
@pytest.mark.parametrize("shape", BNB_SHAPES)
def test_bitsandbytes_dequantizes_loralab_layers_to_the_same_bits(bnb, shape, src, out, double_quant):
    """bitsandbytes' ``dequantize_4bit`` of an ``NF4Linear``'s codes and (double-quantized or plain) fp32
    scales gives ``NF4Linear.dequantize``'s bits, fp32 and bf16 output (one rounding of the fp32 product)."""
    linear = torch.nn.Linear(shape[1], shape[0], bias=False, dtype=src)
    linear.weight.data = _weight(shape, src)
    layer = NF4Linear.from_linear(linear, QuantConfig(double_quant=double_quant))
    state = bnb.QuantState(absmax=layer.scales(), shape=torch.Size(shape), code=BOOK, blocksize=BLOCK, quant_type="nf4", dtype=out)
    theirs = bnb.dequantize_4bit(layer.codes.reshape(-1, 1), state)
    ours = layer.dequantize(out)
    assert theirs.dtype == ours.dtype == out and theirs.shape == ours.shape == shape
    assert torch.equal(theirs, ours)
    assert torch.equal(ours.reshape(-1)[64:128], torch.zeros(64, dtype=out))


@pytest.mark.parametrize("src", SOURCE_DTYPES)
def test_bitsandbytes_round_trip_equals_loralab_round_trip(bnb, src):
    """quantize_4bit → dequantize_4bit (bitsandbytes alone) equals quantize_nf4 → dequantize_nf4, fp32 scales."""
    weight = _weight((256, 512), src)
    packed, state = bnb.quantize_4bit(weight, blocksize=BLOCK, quant_type="nf4", compress_statistics=False)
    assert torch.equal(bnb.dequantize_4bit(packed, state), dequantize_nf4(*quantize_nf4(weight, BLOCK), (256, 512), src))


def test_bitsandbytes_double_quantization_is_another_scheme(bnb):
    """bitsandbytes' double quantization: offset m = mean(s) in fp32 (loralab: float64, then fp32 — within one
    fp32 ulp), the centred scales s − m in blocks of 256 coded by its 8-bit dynamic code book (256
    non-uniform values, nearest one), one fp32 absmax per block. loralab: linear int8,
    q = round(127 (s − m)/c₂), so |ŝ − s| ≤ c₂/254; bitsandbytes' error reaches 0.0070·c₂ here (its
    code book's gaps near ±1 are wider than 1/127). The codes are the same, so the dequantized weights
    differ only through ŝ: bitsandbytes' Ŵ equals loralab's ``dequantize_nf4`` of the same codes with
    bitsandbytes' ŝ, bit for bit."""
    weight = _weight((512, 1024), torch.float32)
    codes, s = quantize_nf4(weight, BLOCK)
    q, c2, mean = quantize_scales(s, SCALE_BLOCK)
    packed, state = bnb.quantize_4bit(weight, blocksize=BLOCK, quant_type="nf4", compress_statistics=True)
    assert torch.equal(packed.reshape(-1), codes)
    assert abs(state.offset.item() - mean.item()) <= (torch.nextafter(mean, mean + 1) - mean).item()
    assert state.state2.blocksize == SCALE_BLOCK and state.state2.code.numel() == 256
    assert len(set(torch.diff(state.state2.code.sort().values).tolist())) > 2  # not a uniform grid
    s_bnb = bnb.dequantize_blockwise(state.absmax, state.state2) + state.offset
    s_ours = dequantize_scales(q, c2, mean, SCALE_BLOCK)
    c2_bnb = (s - state.offset).reshape(-1, SCALE_BLOCK).abs().amax(1)
    err_ours = ((s_ours - s).reshape(-1, SCALE_BLOCK).abs().amax(1) / c2).max().item()
    err_bnb = ((s_bnb - s).reshape(-1, SCALE_BLOCK).abs().amax(1) / c2_bnb).max().item()
    assert err_ours <= 1 / 254 + 1e-6 and 1 / 254 < err_bnb < 0.008
    assert torch.equal(bnb.dequantize_4bit(packed, state), dequantize_nf4(codes, s_bnb, weight.shape, torch.float32))


def _near_midpoints(absmax: float, ulps: int = 3) -> torch.Tensor:
    """Blocks of 64: absmax first, then every ±fl(midpoint · absmax) and its ±1..ulps fp32 neighbours."""
    base = MIDPOINTS * absmax
    values, below, above = [base], base, base
    for _ in range(ulps):
        below, above = torch.nextafter(below, below - 1), torch.nextafter(above, above + 1)
        values += [below, above]
    values = torch.stack(values, 1).reshape(-1)
    values = torch.cat([values, -values])
    rows = -(-values.numel() // (BLOCK - 1))
    blocks = torch.zeros(rows, BLOCK)
    blocks[:, 0] = absmax
    blocks[:, 1:] = torch.cat([values, torch.zeros(rows * (BLOCK - 1) - values.numel())]).reshape(rows, -1)
    return blocks.reshape(-1)


def test_bitsandbytes_normalises_by_a_reciprocal(bnb):
    """bitsandbytes (CPU) normalises by w · fl(1/c), loralab by w / c (correctly rounded): at most one ulp apart,
    so a code differs exactly where the two land on different sides of a midpoint. For weights within
    3 ulps of midpoint · c: 0 codes differ for c = 1 and 5, and 33 in all for c = 3, 7, 0.3, 1.7, 6,
    11 (6, 8, 3, 6, 6, 7 of 210 each); each is the adjacent code."""
    differing = {}
    for c in (1.0, 5.0, 3.0, 7.0, 0.3, 1.7, 6.0, 11.0):
        weight = _near_midpoints(c)
        ours = unpack_nibbles(quantize_nf4(weight, BLOCK)[0]).long()
        theirs = unpack_nibbles(bnb.quantize_4bit(weight, blocksize=BLOCK, quant_type="nf4")[0].reshape(-1)).long()
        by_reciprocal = torch.bucketize(weight * (1 / torch.tensor(c)), MIDPOINTS)
        assert torch.equal(ours, torch.bucketize(weight / c, MIDPOINTS))
        assert torch.equal(theirs, by_reciprocal)
        assert ((ours - theirs).abs() <= 1).all()
        differing[c] = int((ours != theirs).sum())
    assert differing == {1.0: 0, 5.0: 0, 3.0: 6, 7.0: 8, 0.3: 3, 1.7: 6, 6.0: 6, 11.0: 7}


def test_bitsandbytes_cpu_dequant_of_rows_that_are_not_whole_blocks_and_the_flat_call(bnb):
    """For a 96 × 96 weight (blocks of 64 cross rows), bitsandbytes 0.50.2's native CPU ``dequantize_4bit`` reads
    the scales right on some CPUs (seen on an AMD EPYC with AVX2 only) and wrong on others (seen on an Intel Xeon
    with AVX-512): there it multiplies element (r, j) by scale r · (96 // 64) + j // 64 = r + j // 64 instead of
    (96 r + j) // 64, so every row but the first reads wrong scales. Only these two outcomes pass. The weight
    passed flat, as loralab does (``quant/library_dequant.py``), gives loralab's values on both."""
    weight = torch.randn(96, 96, generator=torch.Generator().manual_seed(1))
    codes, absmax = quantize_nf4(weight, BLOCK)
    ours = dequantize_nf4(codes, absmax, (96, 96), torch.float32)

    def theirs(shape):
        state = bnb.QuantState(absmax=absmax, shape=torch.Size(shape), code=BOOK, blocksize=BLOCK, quant_type="nf4", dtype=torch.float32)
        return bnb.dequantize_4bit(codes.reshape(-1, 1), state).reshape(96, 96)

    assert torch.equal(theirs((96 * 96,)), ours)
    two_d = theirs((96, 96))
    rows, cols = torch.meshgrid(torch.arange(96), torch.arange(96), indexing="ij")
    per_row_blocks = BOOK[unpack_nibbles(codes).long().reshape(96, 96)] * absmax[rows * (96 // BLOCK) + cols // BLOCK]
    if not torch.equal(two_d, ours):
        assert torch.equal(two_d, per_row_blocks)
        wrong_rows = (two_d != ours).any(1)
        assert not wrong_rows[0] and wrong_rows[1:].all()


# -- torchao ----------------------------------------------------------------------------------------
AO_SHAPES = [(128, 128), (512, 96), (256, 512)]  # numel a multiple of 64 · 256 (torchao requires it); 96: blocks cross rows


# (exact ties that differ, other elements that differ) per (shape, source dtype), _weight(shape, dtype, seed 0)
AO_CODE_DIFFERENCES = {
    ((128, 128), torch.float32): (10, 4), ((512, 96), torch.float32): (10, 7), ((256, 512), torch.float32): (10, 22),
    ((128, 128), torch.bfloat16): (3, 25), ((512, 96), torch.bfloat16): (3, 42), ((256, 512), torch.bfloat16): (3, 405),
}  # fmt: skip


def _ao_book(dtype: torch.dtype) -> torch.Tensor:
    return torch.tensor([round(v, 4) for v in NF4], dtype=dtype)


def _nearest(x: torch.Tensor, book: torch.Tensor) -> torch.Tensor:
    """Index of the nearest value of ``book`` to each x, distances computed in book's dtype (ties: lower index)."""
    return (x.to(book.dtype)[:, None] - book).abs().argmin(dim=1)


@pytest.mark.parametrize("src", SOURCE_DTYPES)
def test_torchao_code_book_is_the_published_one_rounded_to_4_decimals(torchao_nf4, src):
    """torchao's table = round(NF4, 4 decimals) in the weight's dtype: up to 5.0e-5 from loralab's in fp32
    (−0.0911 for −0.09105), 1.6e-3 in bf16 (−0.6962 becomes −0.6953125); the same order, so a code
    means the same value up to that."""
    book = torchao_nf4.to_nf4(torch.randn(64, 256).to(src)).nf4
    assert book.dtype == src and torch.equal(book, _ao_book(src))
    deviation = (book.double() - torch.tensor(NF4, dtype=torch.float64)).abs().max().item()
    assert deviation == pytest.approx(5.0e-5 if src == torch.float32 else 1.64e-3, rel=0.01)
    assert torch.equal(book.double().argsort(), torch.arange(16))


@pytest.mark.parametrize("src", SOURCE_DTYPES)
@pytest.mark.parametrize("shape", AO_SHAPES)
def test_torchao_codes_differ_only_by_its_table_and_zero_blocks(torchao_nf4, shape, src):
    """Same absmax (bit for bit) and the same high-nibble-first packing. torchao's code of each element is
    exactly the nearest value of its own table (4 decimals, in the weight's dtype) to loralab's
    normalised weight w / c rounded to that dtype, except in all-zero blocks, where 0/0 = NaN gives
    code 0 (loralab: code 7, the exact 0). Elsewhere its codes differ from loralab's only at weights
    near a midpoint, always by one: of the 15 exact ties of fp32 block 4 (loralab: the lower code),
    torchao sends the 10 whose midpoint its table moves down to the upper code (in bf16 block 4 holds
    rounded midpoints: 3 differ); other elements: 4, 7 and 22 (shapes in order) in fp32, 25, 42 and
    405 in bf16 (≤ 0.31%). Counted exactly in ``AO_CODE_DIFFERENCES``."""
    weight = _weight(shape, src)
    codes, absmax = quantize_nf4(weight, BLOCK)
    nf4 = torchao_nf4.to_nf4(weight)
    assert torch.equal(torchao_nf4.get_block_absmax(weight.flatten(), BLOCK).float(), absmax)
    ours, theirs = unpack_nibbles(codes).long(), unpack_nibbles(nf4.quantized_data).long()
    zero = _zero_elements(absmax)
    expected = _nearest(_normalised(weight, absmax), _ao_book(src)).masked_fill(zero, 0)
    assert torch.equal(theirs, expected)
    assert (ours[zero] == 7).all() and (theirs[zero] == 0).all()
    assert ((ours - theirs)[~zero].abs() <= 1).all()
    ties = torch.zeros_like(zero)
    ties[256:271] = True
    differ = (ours != theirs) & ~zero
    counts = int(differ[ties].sum()), int((differ & ~ties).sum())
    assert counts == AO_CODE_DIFFERENCES[shape, src]


@pytest.mark.parametrize("shape", AO_SHAPES)
def test_torchao_codes_equal_loralab_codes_on_code_book_weights(torchao_nf4, shape):
    """Weights NF4[k] · c (every code in every block, c over four decades) are far from any midpoint: there the
    two rules must agree on every code, bf16 and fp32 — a check of the code order and packing alone."""
    numel = shape[0] * shape[1]
    gen = torch.Generator().manual_seed(2)
    codes_in = torch.stack([torch.randperm(BLOCK, generator=gen) % 16 for _ in range(numel // BLOCK)])
    codes_in[:, 0] = 15  # the absmax is NF4[15] · c = c
    scales = torch.logspace(-3, 1, numel // BLOCK)
    for src in SOURCE_DTYPES:
        weight = (BOOK[codes_in] * scales[:, None]).reshape(shape).to(src)
        codes, _ = quantize_nf4(weight, BLOCK)
        assert torch.equal(unpack_nibbles(codes).long(), codes_in.reshape(-1))
        assert torch.equal(torchao_nf4.to_nf4(weight).quantized_data, codes)


def _ao_scales(nf4) -> torch.Tensor:
    return nf4.dequantize_scalers(nf4.quantized_scalers, nf4.quantization_factor, nf4.scaler_block_size)


@pytest.mark.parametrize("shape", AO_SHAPES)
def test_torchao_dequantisation_gives_loralab_bits_with_loralab_table(torchao_nf4, shape):
    """torchao's ``get_original_weight`` (what ``.to(dtype)`` runs) computes NF4[code] · ŝ per flattened block,
    high nibble first. Given loralab's codes and fp32 table in an fp32 NF4Tensor, it equals loralab's
    ``dequantize_nf4`` of those codes with torchao's own ŝ bit for bit, in fp32 and (``.to``) bf16.
    With its own table, the difference is the table's: |Δ| ≤ 5.0e-5 · ŝ + rounding."""
    weight = _weight(shape, torch.float32)
    codes, _ = quantize_nf4(weight, BLOCK)
    nf4 = torchao_nf4.to_nf4(weight)
    s_ao = _ao_scales(nf4)
    own = nf4.get_original_weight()
    with_loralab_table = dequantize_nf4(nf4.quantized_data, s_ao, shape, torch.float32)
    table_step = 5.0e-5 * s_ao.abs().repeat_interleave(BLOCK).reshape(shape)
    rounding = torch.finfo(torch.float32).eps * (own.abs() + with_loralab_table.abs())
    assert ((own - with_loralab_table).abs() <= table_step + rounding).all() and not torch.equal(own, with_loralab_table)
    nf4.quantized_data, nf4.nf4 = codes, BOOK.clone()
    for out in OUT_DTYPES:
        assert torch.equal(nf4.to(out), dequantize_nf4(codes, s_ao, shape, out))


@pytest.mark.parametrize("shape", AO_SHAPES)
def test_torchao_bf16_dequantisation_rounds_table_scales_and_products(torchao_nf4, shape):
    """For a bf16 weight torchao keeps its table and ŝ in bf16 and rounds their product to bf16, where loralab
    multiplies in fp32 and rounds once: with the same codes and ŝ, |Δ| ≤ 1.64e-3 · ŝ (the bf16 table)
    + 2⁻⁸ (|Ŵ_torchao| + |Ŵ_loralab|) (one bf16 rounding each), and the two are not equal."""
    weight = _weight(shape, torch.bfloat16)
    nf4 = torchao_nf4.to_nf4(weight)
    s_ao = _ao_scales(nf4)
    assert s_ao.dtype == torch.bfloat16
    theirs = nf4.get_original_weight().float()
    ours = dequantize_nf4(nf4.quantized_data, s_ao.float(), shape, torch.bfloat16).float()
    bound = 1.64e-3 * s_ao.float().abs().repeat_interleave(BLOCK).reshape(shape) + 2**-8 * (theirs.abs() + ours.abs())
    assert ((theirs - ours).abs() <= bound).all() and not torch.equal(theirs, ours)


@pytest.mark.parametrize("src", SOURCE_DTYPES)
def test_torchao_zero_block_comes_back_as_minus_its_scale(torchao_nf4, src):
    """An all-zero block: torchao stores code 0 (−1.0) and a double-quantized scale ŝ ≠ 0, so it comes back as
    −ŝ in every element (here ŝ = m = 9.85: with the 1e4 outlier the scale step 1/f is 78, so the zero
    scale rounds to q = 0); loralab's is 0."""
    weight = _weight((256, 512), src)
    nf4 = torchao_nf4.to_nf4(weight)
    zero_block = nf4.get_original_weight().reshape(-1)[64:128]
    s_hat = _ao_scales(nf4)[1]
    assert s_hat != 0 and torch.equal(zero_block, (-s_hat).expand(64).to(src))
    layer_zero = NF4Linear.from_linear(_linear(weight), QuantConfig()).dequantize(src).reshape(-1)[64:128]
    assert torch.equal(layer_zero, torch.zeros(64, dtype=src))


def _linear(weight: torch.Tensor) -> torch.nn.Linear:
    linear = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False, dtype=weight.dtype)
    linear.weight.data = weight
    return linear


def test_torchao_double_quantization_saturates_the_largest_scales(torchao_nf4):
    """torchao (fp32 weight): m = mean(s) in fp32 (loralab's float64 mean, rounded: within one ulp),
    f = 256 / (2 c₂) per block of 256 centred scales, q = clamp(round((s − m) f), −128, 127) int8,
    ŝ = q / f + m. A centred scale with (s − m) f ≥ 127.5 is clamped to 127 and comes back low by
    (s − m) − 127/f ∈ [c₂/256, c₂/128]: the largest scale of every block whose c₂ is reached on the
    positive side (all 32 here) loses a whole step c₂/128, twice loralab's worst error
    (q = round(127 (s − m)/c₂): |ŝ − s| ≤ c₂/254 everywhere); 34 of the 8192 scales saturate. The
    others err ≤ c₂/256 (half a step of 2c₂/256)."""
    weight = _weight((512, 1024), torch.float32)
    _, s = quantize_nf4(weight, BLOCK)
    q, c2, mean = quantize_scales(s, SCALE_BLOCK)
    nf4 = torchao_nf4.to_nf4(weight)
    assert abs(nf4.scaler_mean.item() - mean.item()) <= (torch.nextafter(mean, mean + 1) - mean).item()
    centred = (s - nf4.scaler_mean).reshape(-1, SCALE_BLOCK)
    c2_ao = centred.abs().amax(1)
    factor = nf4.quantization_factor
    assert torch.equal(factor, 256 / (2 * c2_ao))
    err = (_ao_scales(nf4) - s).reshape(-1, SCALE_BLOCK).abs() / c2_ao[:, None]
    saturated = centred * factor[:, None] >= 127.5
    assert int(saturated.sum()) == 34
    assert (nf4.quantized_scalers.reshape(-1, SCALE_BLOCK)[saturated] == 127).all()
    assert (err[saturated] >= 1 / 256 - 1e-6).all() and (err[saturated] <= 1 / 128 + 1e-6).all()
    tops = err.gather(1, centred.argmax(1, keepdim=True))[centred.amax(1) == c2_ao]
    assert tops.numel() == 32 and torch.allclose(tops, torch.full_like(tops, 1 / 128), rtol=1e-4)
    assert (err[~saturated] <= 1 / 256 + 1e-6).all()
    ours = (dequantize_scales(q, c2, mean, SCALE_BLOCK) - s).reshape(-1, SCALE_BLOCK).abs() / c2[:, None]
    assert ours.max() <= 1 / 254 + 1e-6
