"""Fixtures for the model-loading tests: an isolated cache, an isolated HF cache, a tiny GGUF file."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from gguf_files import write_tiny_gguf

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


@pytest.fixture
def tiny_gguf(tmp_path):
    """``(path, reference)``: a float32 GGUF file written from a tiny llama ``reference`` (byte-level BPE tokenizer)."""
    return write_tiny_gguf(tmp_path / "tiny-llama.gguf")
