"""NF4 dequantisation as one generated kernel (``torch.compile``), used on CUDA GPUs.

ŵ = NF4[code] · s_block, in ``dtype``: each byte's two 4-bit codes (high nibble first) index the 16-value
code book, each value is multiplied by its block's scale in float32 and rounded once to ``dtype``. The
eager path (:func:`loralab.quant.blockwise.dequantize_nf4`) computes the same products with a 256-entry
table of 8-byte words and writes the same roundings, so both give the same bits; compiled, the lookup,
the product and the rounding are one pass over the packed codes, with no intermediate as large as the
weight. Compiled once per weight shape (a model has a handful); where compiling fails (no compiler for
this device), the eager path is used from then on, said once in the log.
"""

from __future__ import annotations

import logging

import torch

from loralab.quant.codebook import nf4_codebook_on

_compiled = None
_unavailable = False


def _lookup_and_scale(packed: torch.Tensor, scales: torch.Tensor, book: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(blocks, block_size) in ``dtype``: packed (numel/2,) uint8, scales (blocks,) float32, book (16,) float32."""
    high = (packed >> 4).to(torch.int64)
    low = (packed & 15).to(torch.int64)
    codes = torch.stack([high, low], dim=-1).reshape(scales.shape[0], -1)
    return (book[codes] * scales[:, None]).to(dtype)


def dequantize_nf4_fused(packed: torch.Tensor, scales: torch.Tensor, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor | None:
    """Ŵ reshaped to ``shape``, bit-for-bit ``dequantize_nf4``'s; None where this machine cannot compile it."""
    global _compiled, _unavailable
    if _unavailable:
        return None
    if _compiled is None:
        _compiled = torch.compile(_lookup_and_scale, dynamic=False)
    try:
        return _compiled(packed, scales, nf4_codebook_on(packed.device), dtype).reshape(shape)
    except Exception as err:  # noqa: BLE001 — any compiler failure: the eager path computes the same
        _unavailable = True
        logging.getLogger("loralab").info("NF4 dequantisation stays eager: torch.compile failed here (%s)",
                                          str(err).splitlines()[0][:200] if str(err) else type(err).__name__)  # fmt: skip
        return None
