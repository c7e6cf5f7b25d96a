"""Local model folders, the tiny-* names, tokenizers and pad tokens."""

import pytest
import torch
from safetensors.torch import save_file

from loralab.errors import ModelLoadError
from loralab.models import load_model, load_tokenizer, tiny_model


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_tiny_names_use_the_bundled_tokenizer_end_to_end(kind, smol_tokenizer):
    model, tokenizer = load_model(f"tiny-{kind}")
    assert len(tokenizer) == len(smol_tokenizer)
    assert model.get_input_embeddings().num_embeddings == len(tokenizer)
    assert not model.training
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hello"}], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    reference = smol_tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hello"}], add_generation_prompt=True, return_dict=True
    )
    assert prompt["input_ids"].tolist() == [reference["input_ids"]]
    out = model.generate(**prompt, max_new_tokens=3, do_sample=False, min_new_tokens=3)
    assert out.shape[1] == prompt["input_ids"].shape[1] + 3


def test_tiny_names_match_tiny_model(smol_tokenizer):
    model, _ = load_model("TINY-LLAMA")
    reference = tiny_model("llama", vocab_size=len(smol_tokenizer))
    ids = torch.tensor([[1, 200, 3000, 2]])
    with torch.no_grad():
        assert torch.equal(model(ids).logits, reference(ids).logits)


def _save(model, tokenizer, folder):
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_saved_folder_loads_the_same_weights(kind, tmp_path, smol_tokenizer):
    reference = tiny_model(kind, vocab_size=len(smol_tokenizer), seed=5)
    folder = _save(reference, smol_tokenizer, tmp_path / "model")
    model, tokenizer = load_model(folder)
    ids = torch.tensor([[5, 17, 900, 2]])
    with torch.no_grad():
        assert torch.equal(model(ids).logits, reference(ids).logits)
    assert not model.training
    assert tokenizer.get_vocab() == smol_tokenizer.get_vocab()
    assert load_model(str(folder))[0].config.model_type == reference.config.model_type


def test_checkpoint_missing_weights_is_refused(tmp_path, smol_tokenizer):
    reference = tiny_model("llama", vocab_size=len(smol_tokenizer))
    folder = _save(reference, smol_tokenizer, tmp_path / "model")
    weights = {k: v for k, v in reference.state_dict().items() if "layers.1.mlp" not in k}
    save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(ModelLoadError, match="lacks 3 weight"):
        load_model(folder)


def test_folder_without_weights_is_a_clear_error(tmp_path):
    tiny_model("llama").config.save_pretrained(str(tmp_path))
    with pytest.raises(ModelLoadError, match="Could not load"):
        load_model(tmp_path)


def test_folder_without_config_is_a_clear_error(tmp_path):
    with pytest.raises(ModelLoadError, match="no config.json"):
        load_model(tmp_path)


def test_file_that_is_not_gguf_is_a_clear_error(tmp_path):
    path = tmp_path / "weights.bin"
    path.write_bytes(b"\0" * 8)
    with pytest.raises(ModelLoadError, match="not a .gguf"):
        load_model(path)


@pytest.mark.parametrize("name", ["./no/such/folder", "/no/such/model", "missing.gguf", "a/b/c", "~/nope-model-dir"])
def test_missing_path_is_a_clear_error(name):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(name)


@pytest.mark.parametrize("name", ["", "   ", "tiny-bert"])
def test_empty_or_unknown_names(name):
    with pytest.raises(ModelLoadError):
        load_model(name)


def test_tokenizer_without_pad_gets_eos_as_pad(tmp_path, smol_tokenizer):
    from transformers import AutoTokenizer

    smol_tokenizer.save_pretrained(str(tmp_path))
    tokenizer = AutoTokenizer.from_pretrained(str(tmp_path))
    tokenizer.pad_token = None
    tokenizer.save_pretrained(str(tmp_path))
    tiny_model("gpt2", vocab_size=len(smol_tokenizer)).save_pretrained(str(tmp_path))
    assert AutoTokenizer.from_pretrained(str(tmp_path)).pad_token is None
    for loaded in (load_tokenizer(tmp_path), load_model(tmp_path)[1]):
        assert loaded.pad_token == loaded.eos_token == smol_tokenizer.eos_token
        assert loaded.pad_token_id == smol_tokenizer.eos_token_id


def test_load_tokenizer_for_tiny_and_bundled_names(smol_tokenizer):
    for name in ("tiny-gpt2", "SmolLM2-135M-Instruct"):
        tokenizer = load_tokenizer(name)
        assert tokenizer.get_vocab() == smol_tokenizer.get_vocab()
        assert tokenizer.pad_token is not None
