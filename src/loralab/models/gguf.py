"""GGUF files: dequantized once by transformers, then cached as safetensors.

A Q4_1 GGUF stores each weight as 4-bit blocks with a scale and minimum per block;
transformers unpacks them to float32 (w = scale * q + min). That takes tens of seconds,
so the float32 result is saved with ``save_pretrained`` and later loads read the cache.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from loralab.errors import ModelLoadError
from loralab.models.cache import atomic_save, cache_dir, file_cache_key
from loralab.models.pretrained import load_pretrained

logger = logging.getLogger("loralab")


def gguf_cache_folder(gguf_path: Path) -> Path:
    """Cache folder of an arbitrary GGUF file, keyed by its path, size and mtime."""
    return cache_dir() / "gguf" / file_cache_key(gguf_path)


def load_gguf_model(gguf_path: Path, model_dir: Path, dtype: torch.dtype, label: str = ""):
    """The model in ``gguf_path`` as ``dtype``, read from the float32 cache ``model_dir`` (filled on first use)."""
    from transformers import GgufConfig

    if (model_dir / "config.json").is_file():
        cached = f"the cached conversion {model_dir} (delete it to convert again)"
        return load_pretrained(str(model_dir), cached, dtype=dtype)
    logger.info("Converting %s once (dequantizing takes a while); cached at %s", label or gguf_path, model_dir)
    model = load_pretrained(
        str(gguf_path.parent),
        f"the GGUF file {gguf_path}",
        gguf_file=gguf_path.name,
        quantization_config=GgufConfig(dequantize=True),  # plain float32 weights, no quantizer left to block saving
        dtype=torch.float32,
    )
    atomic_save(lambda folder: model.save_pretrained(str(folder)), model_dir)
    return model.to(dtype)


def load_gguf_tokenizer(gguf_path: Path, tokenizer_dir: Path):
    """The tokenizer (vocabulary, merges, chat template) in ``gguf_path``, cached in ``tokenizer_dir``."""
    from transformers import AutoTokenizer

    if (tokenizer_dir / "tokenizer_config.json").is_file():
        return AutoTokenizer.from_pretrained(str(tokenizer_dir))
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    except (OSError, ValueError, KeyError, NotImplementedError) as error:
        raise ModelLoadError(f"Could not read a tokenizer from the GGUF file {gguf_path}: {error}") from error
    atomic_save(lambda folder: tokenizer.save_pretrained(str(folder)), tokenizer_dir)
    return tokenizer
