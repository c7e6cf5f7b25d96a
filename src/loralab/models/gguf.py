"""GGUF files: dequantized once by transformers, then cached as safetensors.

A Q4_1 GGUF stores each weight as 4-bit blocks with a scale and minimum per block;
transformers unpacks them to float32 (w = scale * q + min). That takes tens of seconds,
so the float32 result is saved with ``save_pretrained`` and later loads read the cache. The cached
folders are written portable (:mod:`loralab.models.portable_files`), and made so when read, so that a cache
filled under transformers 5 reads the same under 4.x (rope θ, tokenizer class). A tokenizer read from a GGUF
gets its special tokens and BOS-adding from the file's own fields (``apply_gguf_special_tokens``): transformers
4.57 misreads SmolLM2's (EOS = BOS, BOS prepended against ``tokenizer.ggml.add_bos_token = false``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from loralab.errors import ModelLoadError
from loralab.models.cache import atomic_save, cache_dir, file_cache_key
from loralab.models.portable_files import make_portable
from loralab.models.pretrained import load_pretrained

logger = logging.getLogger("loralab")


def gguf_cache_folder(gguf_path: Path) -> Path:
    """Cache folder of an arbitrary GGUF file, keyed by its path, size and mtime."""
    return cache_dir() / "gguf" / file_cache_key(gguf_path)


def load_gguf_model(gguf_path: Path, model_dir: Path, dtype: torch.dtype, label: str = ""):
    """The model in ``gguf_path`` as ``dtype``, read from the float32 cache ``model_dir`` (filled on first use)."""
    if (model_dir / "config.json").is_file():
        _portable_on_read(model_dir)
        cached = f"the cached conversion {model_dir} (delete it to convert again)"
        return load_pretrained(str(model_dir), cached, dtype=dtype)
    logger.info("Converting %s once (dequantizing takes a while); cached at %s", label or gguf_path, model_dir)
    try:
        from transformers import GgufConfig  # transformers 5; 4.x always dequantizes GGUF weights
    except ImportError:
        dequantized = {}
    else:  # plain float32 weights, no quantizer left to block saving
        dequantized = {"quantization_config": GgufConfig(dequantize=True)}
    model = load_pretrained(
        str(gguf_path.parent), f"the GGUF file {gguf_path}", gguf_file=gguf_path.name, dtype=torch.float32, **dequantized
    )
    atomic_save(lambda folder: _save_portable(model, folder), model_dir)
    return model.to(dtype)


def _save_portable(model_or_tokenizer: Any, folder: Path) -> None:
    model_or_tokenizer.save_pretrained(str(folder))
    make_portable(folder)


def read_cached_tokenizer(tokenizer_dir: Path):
    """The tokenizer cached in ``tokenizer_dir`` (made portable first, see the module docstring)."""
    from transformers import AutoTokenizer

    _portable_on_read(tokenizer_dir)
    return AutoTokenizer.from_pretrained(str(tokenizer_dir))


def _portable_on_read(folder: Path) -> None:
    """Make a cache folder written before caches were portable so; a read-only cache is left as it is."""
    try:
        make_portable(folder)
    except OSError as error:
        logger.warning("Could not rewrite %s for transformers 4.x (%s); transformers 5 reads it as it is", folder, error)


def load_gguf_tokenizer(gguf_path: Path, tokenizer_dir: Path):
    """The tokenizer (vocabulary, merges, chat template) in ``gguf_path``, cached in ``tokenizer_dir``."""
    from transformers import AutoTokenizer

    if (tokenizer_dir / "tokenizer_config.json").is_file():
        return read_cached_tokenizer(tokenizer_dir)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    except (OSError, ValueError, KeyError, NotImplementedError) as error:
        raise ModelLoadError(f"Could not read a tokenizer from the GGUF file {gguf_path}: {error}") from error
    apply_gguf_special_tokens(tokenizer, gguf_path)
    atomic_save(lambda folder: _save_portable(tokenizer, folder), tokenizer_dir)
    return tokenizer


#: tokenizer attribute → the GGUF field holding its token id
GGUF_SPECIAL_TOKENS = {"bos_token": "tokenizer.ggml.bos_token_id", "eos_token": "tokenizer.ggml.eos_token_id",
                       "unk_token": "tokenizer.ggml.unknown_token_id", "pad_token": "tokenizer.ggml.padding_token_id"}  # fmt: skip


def apply_gguf_special_tokens(tokenizer: Any, gguf_path: Path) -> None:
    """Set the special tokens and BOS-adding of ``tokenizer`` as the GGUF file has them. transformers 5 reads them so
    already; 4.57 takes the BOS token for EOS too and prepends BOS whatever the file says (both for SmolLM2)."""
    fields = gguf_scalars(gguf_path)
    for name, key in GGUF_SPECIAL_TOKENS.items():
        token_id = fields.get(key)
        if token_id is not None and 0 <= token_id < len(tokenizer):
            token = tokenizer.convert_ids_to_tokens(token_id)
            if getattr(tokenizer, name) != token:
                setattr(tokenizer, name, token)
    if getattr(tokenizer, "add_bos_token", False) and fields.get("tokenizer.ggml.add_bos_token") is False:
        tokenizer.add_bos_token = False


def gguf_scalars(gguf_path: Path) -> dict[str, bool | int | float]:
    """The number and boolean metadata fields of a GGUF file (its header only; the tensors are not read)."""
    from gguf import GGUFReader, GGUFValueType

    numbers = {t for t in GGUFValueType if t not in (GGUFValueType.STRING, GGUFValueType.ARRAY)}
    return {key: field.parts[field.data[0]][0].item() for key, field in GGUFReader(str(gguf_path)).fields.items()
            if len(field.types) == 1 and field.types[0] in numbers and field.data}  # fmt: skip
