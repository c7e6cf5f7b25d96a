"""Any .gguf path: read through transformers, cached as safetensors keyed by path, size and mtime."""

import logging
import os

import pytest
import torch

from loralab.errors import ModelLoadError
from loralab.models import load_model, load_tokenizer
from loralab.models.gguf import gguf_cache_folder

IDS = torch.tensor([[257, 104, 101, 108, 108, 111, 32, 116, 5]])


def test_gguf_file_matches_the_model_it_was_written_from(tiny_gguf, loralab_cache):
    path, reference = tiny_gguf
    model, tokenizer = load_model(path)
    with torch.no_grad():
        torch.testing.assert_close(model(IDS).logits, reference(IDS).logits, atol=1e-5, rtol=1e-5)
    assert tokenizer("hello").input_ids == [104, 101, 108, 108, 111]
    assert tokenizer(" t").input_ids == [256]  # the one merge
    assert tokenizer.pad_token == tokenizer.eos_token == "<|endoftext|>"


def test_first_load_caches_and_cached_load_is_identical(tiny_gguf, loralab_cache, caplog):
    path, _ = tiny_gguf
    folder = gguf_cache_folder(path)
    with caplog.at_level(logging.INFO, logger="loralab"):
        first, _ = load_model(str(path))
    assert any("Converting" in r.message and str(folder / "model") in r.message for r in caplog.records)
    assert folder.parent == loralab_cache / "gguf"
    assert (folder / "model" / "model.safetensors").is_file()
    assert (folder / "tokenizer" / "tokenizer_config.json").is_file()
    assert [p.name for p in folder.iterdir() if ".tmp" in p.name] == []
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="loralab"):
        cached, _ = load_model(path)
    assert not any("Converting" in r.message for r in caplog.records)
    with torch.no_grad():
        assert torch.equal(first(IDS).logits, cached(IDS).logits)


def test_changed_file_gets_a_fresh_cache(tiny_gguf, loralab_cache):
    path, _ = tiny_gguf
    load_model(path)
    before = gguf_cache_folder(path)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert gguf_cache_folder(path) != before
    load_model(path)
    assert (gguf_cache_folder(path) / "model" / "config.json").is_file()


def test_half_written_cache_is_never_used(tiny_gguf, loralab_cache):
    path, reference = tiny_gguf
    folder = gguf_cache_folder(path)
    (folder / ".model.tmpdead").mkdir(parents=True)  # a crashed conversion
    (folder / ".model.tmpdead" / "config.json").write_text("{")
    model, _ = load_model(path)
    with torch.no_grad():
        torch.testing.assert_close(model(IDS).logits, reference(IDS).logits, atol=1e-5, rtol=1e-5)


def test_gguf_in_bf16(tiny_gguf, loralab_cache):
    path, _ = tiny_gguf
    model, _ = load_model(path, dtype="bf16")
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}


@pytest.mark.parametrize("content", [b"hello", b"GGUF" + b"\0" * 64])
def test_corrupt_gguf_is_a_clear_error(tmp_path, loralab_cache, content):
    path = tmp_path / "broken.gguf"
    path.write_bytes(content)
    with pytest.raises(ModelLoadError, match="GGUF file"):
        load_model(path)
    with pytest.raises(ModelLoadError, match="GGUF file"):
        load_tokenizer(path)
