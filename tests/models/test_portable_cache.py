"""Cached conversions are written as transformers 4.x and 5.x both read them, and a cache written before that
(by transformers 5) is made so when it is read; a file that is portable already is never rewritten."""

import json
import logging

import pytest
import torch
import transformers
from gguf_files import write_tiny_gguf

from loralab.models import load_model
from loralab.models.gguf import gguf_cache_folder, gguf_scalars, load_gguf_tokenizer, read_cached_tokenizer
from loralab.models.portable_files import make_portable

IDS = torch.tensor([[257, 104, 101, 108, 108, 111, 32, 116, 5]])


def _json(path):
    return json.loads(path.read_text())


def _as_transformers_5_writes_it(folder):
    """Undo what make_portable adds: rope θ only in rope_parameters, the tokenizer class only 5.x knows."""
    config = _json(folder / "model" / "config.json")
    theta = config.pop("rope_theta", None)
    config.setdefault("rope_parameters", {"rope_theta": theta, "rope_type": "default"})  # (written by 4.x: moved)
    config.pop("torch_dtype", None)
    (folder / "model" / "config.json").write_text(json.dumps(config))
    tokenizer = _json(folder / "tokenizer" / "tokenizer_config.json")
    tokenizer["tokenizer_class"] = "TokenizersBackend"
    (folder / "tokenizer" / "tokenizer_config.json").write_text(json.dumps(tokenizer))


def _is_portable(folder):
    """rope θ at the top level (where 4.x reads it), a tokenizer class 4.x knows, returning no token_type_ids."""
    config, tokenizer = _json(folder / "model" / "config.json"), _json(folder / "tokenizer" / "tokenizer_config.json")
    theta = config.get("rope_parameters", config)["rope_theta"]
    names = tokenizer.get("model_input_names") or ["token_type_ids"]  # PreTrainedTokenizerFast's default in 4.x
    inputs = tokenizer["tokenizer_class"] != "PreTrainedTokenizerFast" or "token_type_ids" not in names
    return config.get("rope_theta") == theta and tokenizer["tokenizer_class"] != "TokenizersBackend" and inputs


def test_a_conversion_is_cached_portable_and_an_older_cache_is_made_so_when_read(tiny_gguf, loralab_cache):
    path, reference = tiny_gguf
    load_model(path)
    folder = gguf_cache_folder(path)
    assert _is_portable(folder)

    _as_transformers_5_writes_it(folder)
    assert not _is_portable(folder)
    model, tokenizer = load_model(path)
    assert _is_portable(folder)
    with torch.no_grad():  # the same model and tokenizer as before
        torch.testing.assert_close(model(IDS).logits, reference(IDS).logits, atol=1e-5, rtol=1e-5)
    assert tokenizer("hello").input_ids == [104, 101, 108, 108, 111]


def test_a_portable_file_is_not_rewritten(tiny_gguf, loralab_cache):
    path, _ = tiny_gguf
    load_model(path)
    files = [gguf_cache_folder(path) / "model" / "config.json", gguf_cache_folder(path) / "tokenizer" / "tokenizer_config.json"]
    before = [(f.stat().st_ino, f.stat().st_mtime_ns) for f in files]
    make_portable(files[0].parent), make_portable(files[1].parent)
    load_model(path)
    assert [(f.stat().st_ino, f.stat().st_mtime_ns) for f in files] == before


@pytest.mark.skipif(transformers.__version__.startswith("4."), reason="transformers 4 cannot read what 5 wrote: the point")
def test_a_read_only_older_cache_still_loads_with_a_warning(tiny_gguf, loralab_cache, caplog, monkeypatch):
    import loralab.models.portable_files as portable_files

    path, _ = tiny_gguf
    load_model(path)
    folder = gguf_cache_folder(path) / "tokenizer"
    _as_transformers_5_writes_it(folder.parent)

    def read_only(path, write):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(portable_files, "atomic_write", read_only)
    with caplog.at_level(logging.WARNING, logger="loralab"):
        tokenizer = read_cached_tokenizer(folder)  # transformers 5 reads the older file as it is
    assert any("Could not rewrite" in r.message and str(folder) in r.message for r in caplog.records)
    assert _json(folder / "tokenizer_config.json")["tokenizer_class"] == "TokenizersBackend"
    assert tokenizer("hello").input_ids == [104, 101, 108, 108, 111]


@pytest.mark.parametrize("add_bos", [None, True, False])
def test_gguf_scalars_are_read(add_bos, tmp_path):
    path, _ = write_tiny_gguf(tmp_path / "t.gguf", add_bos_token=add_bos)
    fields = gguf_scalars(path)
    assert fields.get("tokenizer.ggml.add_bos_token") is add_bos
    assert fields["tokenizer.ggml.eos_token_id"] == 257 and fields["llama.block_count"] == 2
    assert "tokenizer.ggml.model" not in fields  # a string


def test_a_gguf_tokenizer_gets_the_files_special_tokens_and_bos_setting(tmp_path, monkeypatch):
    """transformers 4.57 reads SmolLM2's GGUF (add_bos_token = false, eos <|im_end|>) as a tokenizer that prepends
    <|im_start|> and ends on it; made here by switching BOS on and moving EOS in what AutoTokenizer returns."""
    from transformers import AutoTokenizer

    path, _ = write_tiny_gguf(tmp_path / "t.gguf", add_bos_token=False)
    read = AutoTokenizer.from_pretrained

    def adding_bos(*args, **kwargs):
        tokenizer = read(*args, **kwargs)
        tokenizer.add_bos_token, tokenizer.eos_token = True, "Ġt"
        return tokenizer

    monkeypatch.setattr(AutoTokenizer, "from_pretrained", adding_bos)
    assert adding_bos(str(tmp_path), gguf_file="t.gguf")("hello").input_ids == [257, 104, 101, 108, 108, 111]
    tokenizer = load_gguf_tokenizer(path, tmp_path / "cache")
    assert tokenizer("hello").input_ids == [104, 101, 108, 108, 111]
    assert tokenizer.eos_token_id == tokenizer.bos_token_id == 257
    monkeypatch.undo()
    cached = AutoTokenizer.from_pretrained(str(tmp_path / "cache"))
    assert cached("hello").input_ids == [104, 101, 108, 108, 111] and cached.eos_token_id == 257
