"""NF4 dequantisation by bitsandbytes' native kernel, where bitsandbytes is installed (used on CPUs).

bitsandbytes stores NF4 as loralab does: the same 16 values, two codes per byte with the first in the high
nibble, one float32 absmax per block of consecutive elements of the flattened weight, and Ŵ = NF4[code] · s
computed in float32 and rounded once to the output dtype; so its ``dequantize_4bit`` of loralab's codes and
(first-level) scales gives :func:`loralab.quant.blockwise.dequantize_nf4`'s bits (checked against it in
``tests/quant/test_nf4_libraries.py``). On a 2-core AVX512 CPU it is 3–7× faster than the eager path
(``benchmarks/nf4_dequant.py``). The weight is passed flat: bitsandbytes 0.50's CPU kernel picks a 2-D weight's
scales per row, wrong when a block crosses rows (seen with AVX-512, not with AVX2 only). Optional (``pip install bitsandbytes``, extra ``loralab[nf4]``);
without it, or where it cannot run, None and the caller uses its own path.
"""

from __future__ import annotations

import functools
import importlib.util
import logging

import torch

from loralab.quant.codebook import nf4_codebook_on

#: the block sizes and output dtypes bitsandbytes' 4-bit dequantisation accepts
BLOCK_SIZES = (32, 64, 128, 256, 512, 1024, 2048, 4096)
DTYPES = (torch.float32, torch.bfloat16, torch.float16)


@functools.cache
def _bitsandbytes_functional():
    """``bitsandbytes.functional``, or None where it is not installed or does not import (imported once, quietly:
    it logs a warning about an optional package of its own)."""
    if importlib.util.find_spec("bitsandbytes") is None:
        return None
    logger = logging.getLogger("bitsandbytes")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        import bitsandbytes.functional as functional
    except Exception as err:  # noqa: BLE001 — a broken install: loralab's own path computes the same
        logging.getLogger("loralab").info("NF4 dequantisation without bitsandbytes: it does not import (%s)", err)
        return None
    finally:
        logger.setLevel(level)
    return functional


def dequantize_nf4_bitsandbytes(packed: torch.Tensor, scales: torch.Tensor, shape: tuple[int, ...],
                                dtype: torch.dtype) -> torch.Tensor | None:  # fmt: skip
    """Ŵ (``shape``, ``dtype``) from packed codes (numel/2,) uint8 and float32 scales (numel/b,) by bitsandbytes on
    the CPU, bit-for-bit ``dequantize_nf4``'s; None where bitsandbytes is missing, the tensors are not on the CPU,
    or it does not take the block size or dtype."""
    numel = packed.numel() * 2
    if packed.device.type != "cpu" or dtype not in DTYPES or numel // scales.numel() not in BLOCK_SIZES:
        return None
    functional = _bitsandbytes_functional()
    if functional is None:
        return None
    state = functional.QuantState(absmax=scales, shape=torch.Size((numel,)), code=nf4_codebook_on(packed.device),
                                  blocksize=numel // scales.numel(), quant_type="nf4", dtype=dtype)  # fmt: skip
    return functional.dequantize_4bit(packed.reshape(-1, 1), state).reshape(shape)
