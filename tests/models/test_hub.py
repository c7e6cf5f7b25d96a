"""Hub ids: found in the local HF cache, or a fast, clear failure when the hub cannot be reached."""

import time

import pytest
import torch

from loralab.errors import ModelLoadError
from loralab.models import load_model, load_tokenizer, tiny_model
from loralab.models.hub import hub_reachable, is_hub_id

MISSING_ID = "loralab-tests/no-such-model"


def _cache_snapshot(hf_cache, repo_id, model, tokenizer, commit="0123456789abcdef0123456789abcdef01234567"):
    """Lay out ``repo_id`` the way huggingface_hub stores a download: refs/main -> snapshots/<commit>/."""
    repo = hf_cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    model.save_pretrained(str(snapshot))
    tokenizer.save_pretrained(str(snapshot))


@pytest.fixture
def hub_down(monkeypatch):
    """Point the hub at a closed local port: connecting is refused at once, whatever the machine's network."""
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")


def test_hub_id_syntax():
    assert is_hub_id("HuggingFaceTB/SmolLM2-135M-Instruct")
    assert is_hub_id("gpt2")
    assert not is_hub_id("a/b/c")
    assert not is_hub_id("bad id!")


def test_cached_hub_id_loads_without_network(hf_cache, hub_down, smol_tokenizer):
    reference = tiny_model("llama", vocab_size=len(smol_tokenizer), seed=4)
    _cache_snapshot(hf_cache, "loralab-tests/tiny", reference, smol_tokenizer)
    model, tokenizer = load_model("loralab-tests/tiny")
    ids = torch.tensor([[1, 50, 600, 2]])
    with torch.no_grad():
        assert torch.equal(model(ids).logits, reference(ids).logits)
    assert tokenizer.get_vocab() == smol_tokenizer.get_vocab()
    assert load_tokenizer("loralab-tests/tiny").pad_token is not None


def _assert_fast_failure(match):
    start = time.perf_counter()
    with pytest.raises(ModelLoadError, match=match) as error:
        load_model(MISSING_ID)
    assert time.perf_counter() - start < 10
    assert "not in the local Hugging Face cache" in str(error.value)


def test_uncached_hub_id_fails_fast_when_hub_refuses(hf_cache, hub_down):
    assert not hub_reachable()
    _assert_fast_failure("unreachable")


def test_uncached_hub_id_fails_fast_when_offline(hf_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _assert_fast_failure("HF_HUB_OFFLINE")


def test_uncached_hub_id_fails_fast_with_this_machines_network(hf_cache):
    """No endpoint override: offline machines must not hang on DNS or retries."""
    if hub_reachable():
        pytest.skip("the hub is reachable from here; the offline path is covered by the tests above")
    _assert_fast_failure("unreachable")


def test_load_tokenizer_of_uncached_hub_id_fails_fast(hf_cache, hub_down):
    start = time.perf_counter()
    with pytest.raises(ModelLoadError, match="unreachable"):
        load_tokenizer(MISSING_ID)
    assert time.perf_counter() - start < 10
