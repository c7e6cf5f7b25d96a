"""Tiny randomly initialised causal LMs for tests: same code paths as real models, milliseconds to run.

``llama``: LlamaForCausalLM, hidden 32, MLP 64, 2 layers, 4 query heads / 2 kv heads (head dim 8),
untied lm_head (nn.Linear layers). ``gpt2``: GPT2LMHeadModel, n_embd 32, 2 layers, 4 heads,
128 positions, bos = eos = vocab_size - 1 (transformers' Conv1D layers, weight shape (in, out)).
"""

from __future__ import annotations

from typing import Any

import torch

from loralab.errors import ModelLoadError

TINY_KINDS: tuple[str, ...] = ("llama", "gpt2")


def _tiny_config(kind: str, vocab_size: int, overrides: dict[str, Any]):
    """The transformers config of a tiny model of ``kind``, with ``overrides`` applied."""
    from transformers import GPT2Config, LlamaConfig

    if kind == "llama":
        fields: dict[str, Any] = dict(
            vocab_size=vocab_size,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=256,
            tie_word_embeddings=False,
        )
        return LlamaConfig(**{**fields, **overrides})
    last = vocab_size - 1  # GPT-2's default bos/eos (50256) would lie outside a small vocabulary
    fields = dict(
        vocab_size=vocab_size, n_embd=32, n_layer=2, n_head=4, n_positions=128, bos_token_id=last, eos_token_id=last
    )
    return GPT2Config(**{**fields, **overrides})


def tiny_model(kind: str = "llama", *, vocab_size: int = 128, seed: int = 0, **overrides: Any):
    """A tiny causal LM of ``kind`` (one of ``TINY_KINDS``): fp32, eval mode, weights fixed by ``seed``.

    ``overrides`` are config fields (e.g. ``num_hidden_layers=1``). The global torch RNG is left untouched.
    """
    from transformers import AutoModelForCausalLM

    if kind not in TINY_KINDS:
        raise ModelLoadError(f"Unknown tiny model kind '{kind}'. Choose one of: {', '.join(TINY_KINDS)}.")
    config = _tiny_config(kind, vocab_size, overrides)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    return model.eval()
