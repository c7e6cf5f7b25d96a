"""Tiny GGUF files written from a tiny Llama, as llama.cpp lays them out (shared by the model tests)."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

from loralab.models import tiny_model


def _byte_level_alphabet() -> list[str]:
    """GPT-2's printable stand-in for each of the 256 bytes (printable Latin-1 bytes stand for themselves)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]
    stand_in = {b: chr(b) for b in printable} | {b: chr(256 + i) for i, b in enumerate(others)}
    return [stand_in[b] for b in range(256)]


def _llama_cpp_rotary_order(weight: np.ndarray, n_heads: int) -> np.ndarray:
    """Reorder q/k rows per head from HF's rotate-half layout (x1..., x2...) to llama.cpp's interleaved pairs."""
    rows = weight.shape[0]
    return weight.reshape(n_heads, 2, rows // n_heads // 2, -1).swapaxes(1, 2).reshape(weight.shape)


def write_tiny_gguf(path: Path, add_bos_token: bool | None = False):
    """``(path, reference)`` as :func:`tiny_gguf`; ``tokenizer.ggml.add_bos_token`` as llama.cpp's converter writes it
    (None: left out, which transformers 4.57 reads as "add BOS" and 5.x as "do not")."""
    # two merges: transformers 4.57 reads a one-element string array of a GGUF as a plain string
    tokens = [*_byte_level_alphabet(), "Ġt", "<|endoftext|>", "xy"]
    eos = 257
    reference = tiny_model("llama", vocab_size=len(tokens), seed=3, bos_token_id=eos, eos_token_id=eos)
    config = reference.config
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny llama")
    writer.add_vocab_size(config.vocab_size)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_rope_dimension_count(config.hidden_size // config.num_attention_heads)
    writer.add_rope_freq_base((getattr(config, "rope_parameters", None) or {"rope_theta": config.rope_theta})["rope_theta"])
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(tokens)
    writer.add_token_merges(["Ġ t", "x y"])
    writer.add_token_types([gguf.TokenType.NORMAL] * eos + [gguf.TokenType.CONTROL, gguf.TokenType.NORMAL])
    writer.add_bos_token_id(eos)
    writer.add_eos_token_id(eos)
    if add_bos_token is not None:
        writer.add_add_bos_token(add_bos_token)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, config.num_hidden_layers)
    for name, tensor in reference.state_dict().items():
        weight = tensor.numpy()
        if name.endswith("q_proj.weight"):
            weight = _llama_cpp_rotary_order(weight, config.num_attention_heads)
        if name.endswith("k_proj.weight"):
            weight = _llama_cpp_rotary_order(weight, config.num_key_value_heads)
        writer.add_tensor(names.get_name(name, try_suffixes=(".weight",)), np.ascontiguousarray(weight))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path, reference
