"""The Llama family as llama.cpp stores it: which models qualify, tensor names, q/k row order, hyper-parameters.

Names come from the ``gguf`` package's own map (``TensorNameMap`` for ``MODEL_ARCH.LLAMA``):
``model.layers.3.self_attn.q_proj.weight`` → ``blk.3.attn_q.weight``, ``lm_head.weight`` → ``output.weight``.

Row order of q and k: Hugging Face's Llama rotates the two halves of each head (``rotate_half``),
llama.cpp rotates adjacent pairs; Hugging Face's conversion script permuted the original weights
into halves, so llama.cpp's converter permutes them back. Within each head of ``head_dim`` rows,
HF row ``j·head_dim/2 + i`` (half j, position i) becomes GGUF row ``2i + j``. Readers of GGUF
(transformers) undo it. A LoRA B factor of q or k gets the same permutation (its rows are the
weight's rows); A is untouched.
"""

from __future__ import annotations

from typing import Any

import torch
from gguf import MODEL_ARCH, MODEL_ARCH_NAMES, GGUFWriter, TensorNameMap

from loralab.export.errors import ExportError

ARCH = MODEL_ARCH.LLAMA
ARCH_NAME = MODEL_ARCH_NAMES[ARCH]  # "llama"
_SUFFIXES = (".weight", ".bias")


def check_llama(config: Any) -> None:
    """ExportError unless ``config`` is a Llama-family model llama.cpp's ``llama`` architecture runs as it is."""
    model_type = getattr(config, "model_type", None)
    if model_type != "llama":
        raise ExportError(f"GGUF export supports Llama-family models (model_type 'llama', e.g. SmolLM2); "
                          f"this model is {model_type!r}")  # fmt: skip
    if getattr(config, "hidden_act", "silu") != "silu":
        raise ExportError(f"GGUF export: llama.cpp's llama architecture uses SiLU, this model uses {config.hidden_act!r}")
    rope_type = _rope_parameters(config).get("rope_type") or "default"
    if rope_type != "default":
        raise ExportError(f"GGUF export supports plain RoPE only; this model uses rope_type {rope_type!r}")


def _rope_parameters(config: Any) -> dict:
    found = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    return dict(found) if isinstance(found, dict) else {}


def rope_theta(config: Any) -> float:
    theta = _rope_parameters(config).get("rope_theta", getattr(config, "rope_theta", None))
    return float(theta if theta is not None else 10000.0)


def head_dim(config: Any) -> int:
    return int(getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads)


def name_map(config: Any) -> TensorNameMap:
    return TensorNameMap(ARCH, config.num_hidden_layers)


def gguf_name(names: TensorNameMap, hf_name: str) -> str:
    """The GGUF name of parameter ``hf_name`` (ending in .weight or .bias); ExportError if llama.cpp has none."""
    found = names.get_name(hf_name, try_suffixes=_SUFFIXES)
    if found is None:
        raise ExportError(f"GGUF export: {hf_name} has no place in llama.cpp's llama architecture")
    return found


def permute_rows(tensor: torch.Tensor, n_head: int) -> torch.Tensor:
    """Each head's rows from HF's two-halves order to llama.cpp's interleaved order (see the module docstring)."""
    rows = tensor.shape[0]
    per_head = rows // n_head
    return tensor.reshape(n_head, 2, per_head // 2, *tensor.shape[1:]).transpose(1, 2).reshape(tensor.shape)


def to_gguf_rows(name: str, tensor: torch.Tensor, config: Any) -> torch.Tensor:
    """``tensor`` (rows = outputs) of GGUF tensor ``name`` in llama.cpp's row order."""
    if ".attn_q." in name:
        return permute_rows(tensor, config.num_attention_heads)
    if ".attn_k." in name:
        return permute_rows(tensor, config.num_key_value_heads or config.num_attention_heads)
    return tensor


def add_hyperparameters(writer: GGUFWriter, config: Any) -> None:
    """The ``llama.*`` keys llama.cpp (and transformers' GGUF reader) build the model from."""
    heads = config.num_attention_heads
    dim = head_dim(config)
    writer.add_context_length(int(config.max_position_embeddings))
    writer.add_embedding_length(int(config.hidden_size))
    writer.add_block_count(int(config.num_hidden_layers))
    writer.add_feed_forward_length(int(config.intermediate_size))
    writer.add_head_count(int(heads))
    writer.add_head_count_kv(int(config.num_key_value_heads or heads))
    writer.add_rope_freq_base(rope_theta(config))
    writer.add_rope_dimension_count(dim)
    if dim != config.hidden_size // heads:
        writer.add_key_length(dim)
        writer.add_value_length(dim)
    writer.add_layer_norm_rms_eps(float(config.rms_norm_eps))
    writer.add_vocab_size(int(config.vocab_size))
