"""Fixtures shared by the whole test suite."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def smol_tokenizer():
    """The bundled SmolLM2 tokenizer (real vocabulary and chat template, no download)."""
    from loralab.models.bundled import load_bundled_tokenizer

    return load_bundled_tokenizer()
