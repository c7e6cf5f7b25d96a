"""How each tensor is stored for ``--type f16|f32|q8_0``: llama.cpp's conventions.

One-dimensional tensors (norms, biases) stay float32 whatever the type, as llama.cpp's own converter
keeps them. Matrices follow the type; a q8_0 matrix whose rows are not a whole number of 32-value
blocks falls back to float16 (so does llama.cpp's converter).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, LlamaFileType

from loralab.export.errors import ExportError


@dataclass(frozen=True)
class TensorType:
    name: str
    file_type: LlamaFileType  # general.file_type: what most tensors are
    matrix: GGMLQuantizationType  # what a matrix is stored as


TYPES = {
    "f32": TensorType("f32", LlamaFileType.ALL_F32, GGMLQuantizationType.F32),
    "f16": TensorType("f16", LlamaFileType.MOSTLY_F16, GGMLQuantizationType.F16),
    "q8_0": TensorType("q8_0", LlamaFileType.MOSTLY_Q8_0, GGMLQuantizationType.Q8_0),
}


def tensor_type(name: str, allowed: tuple[str, ...] = tuple(TYPES), what: str = "") -> TensorType:
    """The type called ``name``; ExportError for another, or one this ``gguf`` package cannot write."""
    if name not in allowed:
        raise ExportError(f"unsupported GGUF type {name!r}{what}; choose one of: {', '.join(allowed)}")
    chosen = TYPES[name]
    if chosen.matrix not in (GGMLQuantizationType.F32, GGMLQuantizationType.F16):
        try:
            _quantize(np.zeros((1, 32), dtype=np.float32), chosen.matrix)
        except (ImportError, AttributeError, NotImplementedError) as err:
            raise ExportError(f"the installed gguf package cannot write {name} ({err}); upgrade it (pip install -U gguf) "
                              "or export --type f16") from None  # fmt: skip
    return chosen


def _quantize(array: np.ndarray, qtype: GGMLQuantizationType) -> np.ndarray:
    from gguf.quants import quantize  # older gguf packages have no quants module

    return quantize(array, qtype)


def encode(tensor: torch.Tensor, chosen: TensorType) -> tuple[np.ndarray, GGMLQuantizationType | None]:
    """(array, raw type) for ``GGUFWriter.add_tensor``; the raw type is None where numpy's dtype says it."""
    array = tensor.detach().to("cpu", torch.float32).contiguous().numpy()
    if array.ndim < 2 or chosen.matrix == GGMLQuantizationType.F32:
        return array, None
    if chosen.matrix == GGMLQuantizationType.F16 or array.shape[-1] % GGML_QUANT_SIZES[chosen.matrix][0] != 0:
        return array.astype(np.float16), None
    return _quantize(array, chosen.matrix), chosen.matrix
