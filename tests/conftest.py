"""Fixtures shared by the whole test suite."""

import json

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session", autouse=True)
def _private_hub_cache(tmp_path_factory):
    """A Hugging Face hub cache of the session's own: loading the bundled model places it in the hub
    cache (loralab.models.hub_cache), which must never be the user's real one."""
    from huggingface_hub import constants

    folder = tmp_path_factory.mktemp("hf-hub-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(constants, "HF_HUB_CACHE", str(folder))
        patch.setenv("HF_HUB_CACHE", str(folder))
        yield folder


#: a handful of instruction records (tests/train, tests/studies): a tiny model learns them in a few steps
RECORDS = [
    {"prompt": f"What is {a} plus {b}?", "response": f"{a} + {b} = {a + b}.\n#### {a + b}"}
    for a, b in [(1, 2), (3, 4), (5, 6), (7, 8), (2, 9), (4, 4), (6, 1), (8, 3)]
]


@pytest.fixture
def data_file(tmp_path):
    """A JSONL file of ``RECORDS``."""
    path = tmp_path / "tiny.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    return path


@pytest.fixture(scope="session")
def smol_tokenizer():
    """The bundled SmolLM2 tokenizer (real vocabulary and chat template, no download)."""
    from loralab.models.bundled import load_bundled_tokenizer

    return load_bundled_tokenizer()


@pytest.fixture(scope="session")
def smollm2():
    """(model, tokenizer) of the bundled SmolLM2-135M-Instruct, float32, eval mode (loaded once per session)."""
    from loralab.models import load_model

    return load_model("smollm2-135m-instruct")


# -- tiny models with non-zero adapters (tests/lora, tests/quant) --------------------------------
VOCAB = 128


@pytest.fixture
def tokens():
    return torch.randint(0, VOCAB, (2, 9), generator=torch.Generator().manual_seed(1))


@pytest.fixture
def make_model():
    """tiny_model(kind, **overrides): fresh, deterministic; Llama Linear shapes 32×32, 16×32, 64×32, 32×64."""
    from loralab.models.tiny import tiny_model

    return lambda kind="llama", **overrides: tiny_model(kind, vocab_size=VOCAB, **overrides)


@pytest.fixture
def randomize():
    """Give every trainable tensor random values, so that adapters are non-zero (B ≠ 0)."""

    @torch.no_grad()
    def apply(model, seed=0, std=0.3):
        gen = torch.Generator().manual_seed(seed)
        for param in model.parameters():
            if param.requires_grad:
                param.add_(torch.randn(param.shape, generator=gen) * std)
        return model

    return apply
