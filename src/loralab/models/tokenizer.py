"""Tokenizers for every model source, always with a pad token."""

from __future__ import annotations

from pathlib import Path

from loralab.errors import ModelLoadError
from loralab.models.bundled import load_bundled_tokenizer
from loralab.models.source import ModelSource, resolve_source


def ensure_pad_token(tokenizer):
    """Give ``tokenizer`` a pad token (its eos token) if it has none; batching needs one. Returns it."""
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ModelLoadError("The tokenizer has neither a pad nor an eos token, so batches cannot be padded.")
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def tokenizer_for_source(source: ModelSource):
    """The tokenizer of ``source``, with a pad token."""
    from transformers import AutoTokenizer

    from loralab.models.gguf import gguf_cache_folder, load_gguf_tokenizer
    from loralab.models.hub import resolve_hub_id

    if source.kind in ("tiny", "bundled"):
        return ensure_pad_token(load_bundled_tokenizer())
    if source.kind == "gguf":
        path = Path(source.location)
        return ensure_pad_token(load_gguf_tokenizer(path, gguf_cache_folder(path) / "tokenizer"))
    location = source.location if source.kind == "folder" else resolve_hub_id(source.location)
    try:
        return ensure_pad_token(AutoTokenizer.from_pretrained(location))
    except (OSError, ValueError, AttributeError) as error:  # transformers 4.57, a folder without tokenizer files: AttributeError
        raise ModelLoadError(f"Could not load a tokenizer for '{source.location}': {error}") from error


def load_tokenizer(name_or_path: str | Path):
    """The tokenizer of any model :func:`loralab.models.load_model` accepts, with a pad token."""
    return tokenizer_for_source(resolve_source(name_or_path))
