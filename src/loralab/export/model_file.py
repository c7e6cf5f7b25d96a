"""A whole model as a llama.cpp GGUF file (``loralab export --gguf``).

What llama.cpp's ``llama`` architecture needs: the hyper-parameters (:mod:`loralab.export.llama`),
the tokenizer (:mod:`loralab.export.tokenizer`) and every weight under its GGUF name, q and k rows
in llama.cpp's order, stored as ``--type`` says (:mod:`loralab.export.tensor_types`). A model whose
output head is its embedding (tied, as SmolLM2's) has no ``output.weight``: llama.cpp then uses
``token_embd.weight``, and transformers' reader ties them again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gguf import GGML_QUANT_VERSION, GGUFType
from torch import nn

from loralab.export.file import new_writer, write_file
from loralab.export.llama import ARCH_NAME, add_hyperparameters, check_llama, gguf_name, name_map, to_gguf_rows
from loralab.export.tensor_types import encode, tensor_type
from loralab.export.tokenizer import add_tokenizer, tokenizer_fields

TIED_HEAD = "lm_head.weight"


def write_model_gguf(model: nn.Module, tokenizer: Any, out: str | Path, type_name: str = "f16", name: str | None = None) -> Path:
    """Write ``model`` (a transformers Llama-family causal LM, adapters merged) and ``tokenizer`` to ``out``."""
    config = model.config
    check_llama(config)
    chosen = tensor_type(type_name)
    tokens = tokenizer_fields(tokenizer, int(config.vocab_size))
    names = name_map(config)
    tied = bool(getattr(config, "tie_word_embeddings", False))
    tensors = {}
    for hf_name, tensor in model.state_dict().items():
        if tied and hf_name == TIED_HEAD:
            continue
        target = gguf_name(names, hf_name)
        tensors[target] = to_gguf_rows(target, tensor, config)

    writer = new_writer(ARCH_NAME)
    writer.add_type(GGUFType.MODEL)
    writer.add_name(name or str(getattr(config, "name_or_path", "") or "model"))
    add_hyperparameters(writer, config)
    writer.add_file_type(int(chosen.file_type))
    writer.add_quantization_version(GGML_QUANT_VERSION)
    add_tokenizer(writer, tokens)
    for target, tensor in tensors.items():
        array, raw = encode(tensor, chosen)
        writer.add_tensor(target, array, raw_dtype=raw)
    return write_file(writer, out)
