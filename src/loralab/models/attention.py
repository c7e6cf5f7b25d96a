"""Which attention kernel a transformers model runs (``model.attention`` of a recipe).

``auto`` leaves transformers' choice (SDPA where the model supports it); ``sdpa``, ``eager`` (plain matmul +
softmax: on a CPU faster for short sequences, as SDPA's CPU flash-attention backward is slow — measured on a
2-core Xeon with AVX512-BF16, bf16: the quickstart trains at 372–394 tokens/s against 322–338 with SDPA, the same
peak memory, though generation and the KL evaluation ran slower — and it keeps the (batch, heads, L, L)
scores, too much for long sequences), ``flash_attention_2`` /
``flash_attention_3`` (the flash-attn packages, CUDA) and ``flex_attention`` go to transformers'
``set_attn_implementation``.
"""

from __future__ import annotations

from torch import nn

from loralab.errors import ConfigError

#: the choices of ``model.attention``
ATTENTION = ("auto", "sdpa", "eager", "flash_attention_2", "flash_attention_3", "flex_attention")


def set_attention(model: nn.Module, attention: str) -> None:
    """Make ``model`` run ``attention`` (one of ``ATTENTION``; ``auto``: leave it); ConfigError, in one line, where
    this model or machine cannot (a kernel's package missing, a model without it)."""
    if attention == "auto":
        return
    if attention not in ATTENTION:
        raise ConfigError(f"model.attention must be one of {', '.join(ATTENTION)}, got {attention!r}")
    try:
        model.set_attn_implementation(attention)
    except (ImportError, ValueError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ConfigError(f"model.attention: {attention} cannot run here: {reason} (use sdpa or eager)") from None
