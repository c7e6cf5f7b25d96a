"""Fixtures for the model-loading tests: an isolated cache, an isolated HF cache, a tiny GGUF file."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import pytest
import torch

from loralab.models import tiny_model
from loralab.models.bundled import BUNDLED_NAME


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """One intra-op thread while these tests run: on shared, oversubscribed CPUs OpenMP threads
    spin-waiting on each other made a SmolLM2 forward ~20x slower (8 s instead of 0.4 s)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def loralab_cache(tmp_path, monkeypatch, smol_tokenizer) -> Path:
    """An empty ``$LORALAB_CACHE`` except for the bundled tokenizer (so no test re-reads it from the GGUF)."""
    cache = tmp_path / "loralab-cache"
    smol_tokenizer.save_pretrained(str(cache / BUNDLED_NAME / "tokenizer"))
    monkeypatch.setenv("LORALAB_CACHE", str(cache))
    return cache


@pytest.fixture
def hf_cache(tmp_path, monkeypatch) -> Path:
    """An empty Hugging Face hub cache, so tests never see (or fill) the user's real one."""
    from huggingface_hub import constants

    folder = tmp_path / "hf-cache"
    folder.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(folder))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    return folder


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


@pytest.fixture
def tiny_gguf(tmp_path):
    """``(path, reference)``: a float32 GGUF file written from a tiny llama ``reference`` (byte-level BPE tokenizer)."""
    tokens = [*_byte_level_alphabet(), "Ġt", "<|endoftext|>"]
    eos = len(tokens) - 1
    reference = tiny_model("llama", vocab_size=len(tokens), seed=3, bos_token_id=eos, eos_token_id=eos)
    config = reference.config
    path = tmp_path / "tiny-llama.gguf"
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
    writer.add_rope_freq_base(config.rope_parameters["rope_theta"])
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(tokens)
    writer.add_token_merges(["Ġ t"])
    writer.add_token_types([gguf.TokenType.NORMAL] * eos + [gguf.TokenType.CONTROL])
    writer.add_bos_token_id(eos)
    writer.add_eos_token_id(eos)
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
