"""A LoRA adapter alone as llama.cpp's LoRA-adapter GGUF (``loralab export RUN --gguf-adapter``).

The file llama.cpp loads with ``--lora`` (and ``llama-export-lora`` merges): ``general.type`` =
``adapter``, ``adapter.type`` = ``lora``, ``adapter.lora.alpha``, and per adapted weight
``<base tensor name>.lora_a`` (A, (r, d_in)) and ``.lora_b`` (B, (d_out, r)), named as in the base
model's GGUF (``blk.0.attn_q.weight.lora_a``). B of q and k is in llama.cpp's row order, as the
base weights are (:func:`loralab.export.llama.to_gguf_rows`).

llama.cpp scales every pair by alpha / r, r read off the pair's A. loralab's scale (alpha / r, or
alpha / √r with rsLoRA, per-module patterns) is kept exactly: the file's alpha is scale · r; where
that differs between modules, B carries the ratio to the first module's.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from gguf import GGML_QUANT_VERSION, GGUFType, Keys

from loralab.export.errors import ExportError
from loralab.export.file import new_writer, write_file
from loralab.export.llama import ARCH_NAME, check_llama, gguf_name, name_map, to_gguf_rows
from loralab.export.model_file import TIED_HEAD
from loralab.export.tensor_types import encode, tensor_type
from loralab.lora.io import Factors
from loralab.lora.peft_format import AdapterFileConfig

#: tensor types an adapter file may use (its factors are small: no quantization)
ADAPTER_TYPES = ("f32", "f16")


def adapter_tensors(file_config: AdapterFileConfig, modules: dict[str, Factors], extra: dict[str, torch.Tensor],
                    base_config: Any) -> tuple[float, dict[str, torch.Tensor]]:  # fmt: skip
    """(alpha, tensors by GGUF name) of an adapter of a Llama-family base; ExportError if llama.cpp cannot apply it."""
    check_llama(base_config)
    lora = file_config.lora
    if lora.variant != "lora":
        raise ExportError(f"llama.cpp's LoRA GGUF holds plain LoRA only, not {lora.variant}; export the merged model with --gguf")
    if extra:
        raise ExportError(f"the adapter also saves {', '.join(sorted(extra)[:3])}: a llama.cpp LoRA GGUF holds only "
                          "A and B factors; export the merged model with --gguf")  # fmt: skip
    if not modules:
        raise ExportError("the adapter has no LoRA factors to export")
    names = name_map(base_config)
    tied = bool(getattr(base_config, "tie_word_embeddings", False))
    alpha: float | None = None
    tensors: dict[str, torch.Tensor] = {}
    for path in sorted(modules):
        factors = modules[path]
        if factors.layout.kind != "linear":
            raise ExportError(f"{path}: llama.cpp's LoRA GGUF takes adapters on linear layers; this one is on a "
                              f"{factors.layout.kind} layer; export the merged model with --gguf")  # fmt: skip
        if tied and f"{path}.weight" == TIED_HEAD:
            raise ExportError("the adapter changes lm_head, which this model shares with its embedding (llama.cpp "
                              "has no separate output weight to apply it to); export the merged model with --gguf")  # fmt: skip
        target = gguf_name(names, f"{path}.weight")
        rank = factors.A.shape[0]
        module_alpha = lora.scale_for(path) * rank  # llama.cpp: scale = alpha / r
        alpha = module_alpha if alpha is None else alpha
        B = factors.B.float()
        if not math.isclose(module_alpha, alpha, rel_tol=1e-9):
            B = B * (module_alpha / alpha)
        tensors[f"{target}.lora_a"] = factors.A.float()
        tensors[f"{target}.lora_b"] = to_gguf_rows(target, B, base_config)
    assert alpha is not None
    return alpha, tensors


def write_adapter_gguf(file_config: AdapterFileConfig, modules: dict[str, Factors], extra: dict[str, torch.Tensor],
                       base_config: Any, out: str | Path, type_name: str = "f32", name: str | None = None) -> Path:  # fmt: skip
    """Write the adapter (as :func:`loralab.lora.read_adapter` returns it) for ``base_config``'s model to ``out``."""
    chosen = tensor_type(type_name, ADAPTER_TYPES, " for an adapter")
    alpha, tensors = adapter_tensors(file_config, modules, extra, base_config)
    writer = new_writer(ARCH_NAME)
    writer.add_type(GGUFType.ADAPTER)
    writer.add_string(Keys.Adapter.TYPE, "lora")
    writer.add_float32(Keys.Adapter.LORA_ALPHA, float(alpha))
    writer.add_name(name or "lora-adapter")
    writer.add_file_type(int(chosen.file_type))
    writer.add_quantization_version(GGML_QUANT_VERSION)
    for target, tensor in tensors.items():
        array, raw = encode(tensor, chosen)
        writer.add_tensor(target, array, raw_dtype=raw)
    return write_file(writer, out)
