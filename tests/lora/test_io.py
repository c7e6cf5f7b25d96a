"""Adapter files: bad input gives a clear error and leaves the model as it was."""

import json

import pytest
import torch

import loralab
from loralab.errors import AdapterFileError, AdapterMismatchError
from loralab.lora.interface import adapter_modules


@pytest.fixture
def saved(make_model, randomize, tmp_path):
    model = make_model()
    loralab.add_adapter(model, loralab.LoraConfig(r=2, alpha=4, target_modules=["q_proj", "v_proj"]))
    randomize(model)
    return loralab.save_adapter(model, tmp_path / "adapter")


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_adapter_for_another_base_names_module_and_shapes(saved, make_model):
    other = make_model(hidden_size=48)
    before = _state(other)
    with pytest.raises(AdapterMismatchError, match=r"q_proj\.lora_A\.weight.*\(2, 32\).*\(2, 48\)"):
        loralab.load_adapter(other, saved)
    assert not list(adapter_modules(other)) and "loralab_adapters" not in other.__dict__
    after = _state(other)
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


def test_adapter_whose_targets_are_absent(saved, make_model):
    with pytest.raises(AdapterMismatchError, match="does not fit"):
        loralab.load_adapter(make_model("gpt2"), saved)


def test_missing_folder_and_files(tmp_path, make_model):
    with pytest.raises(AdapterFileError, match="does not exist"):
        loralab.load_adapter(make_model(), tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AdapterFileError, match="adapter_config.json"):
        loralab.load_adapter(make_model(), tmp_path / "empty")


def test_pickles_are_refused(saved, make_model):
    (saved / "adapter_model.safetensors").rename(saved / "adapter_model.bin")
    with pytest.raises(AdapterFileError, match="pickle"):
        loralab.load_adapter(make_model(), saved)


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_safetensors(saved, make_model, damage):
    path = saved / "adapter_model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"\x07" * 64)
    model = make_model()
    with pytest.raises(AdapterFileError, match="truncated or corrupt"):
        loralab.load_adapter(model, saved)
    assert not list(adapter_modules(model))


def test_newer_peft_keys_warn_but_load(saved, make_model, tokens):
    config = json.loads((saved / "adapter_config.json").read_text())
    config.update(some_future_option=3, use_dora=False, lora_bias=False)
    (saved / "adapter_config.json").write_text(json.dumps(config))
    with pytest.warns(UserWarning, match="some_future_option"):
        loralab.load_adapter(make_model(), saved)


@pytest.mark.parametrize("key, value", [("use_dora", True), ("lora_bias", True), ("peft_type", "IA3"), ("init_lora_weights", "pissa")])
def test_maths_changing_keys_are_errors(saved, make_model, key, value):
    config = json.loads((saved / "adapter_config.json").read_text())
    config[key] = value
    (saved / "adapter_config.json").write_text(json.dumps(config))
    # use_dora is supported, but then the file must hold DoRA's magnitudes
    with pytest.raises(AdapterFileError, match="lora_magnitude_vector" if key == "use_dora" else key):
        loralab.load_adapter(make_model(), saved)


def test_bad_json_and_bad_values(saved, make_model):
    cfg_path = saved / "adapter_config.json"
    config = json.loads(cfg_path.read_text())
    cfg_path.write_text("{not json")
    with pytest.raises(AdapterFileError, match="not valid JSON"):
        loralab.load_adapter(make_model(), saved)
    cfg_path.write_text(json.dumps({**config, "r": 0}))
    with pytest.raises(AdapterFileError, match="rank"):
        loralab.load_adapter(make_model(), saved)


def test_tensor_for_unknown_module(saved, make_model):
    from safetensors.torch import load_file, save_file

    path = saved / "adapter_model.safetensors"
    tensors = load_file(path)
    tensors["base_model.model.model.layers.0.mlp.up_proj.lora_A.weight"] = torch.zeros(2, 32)
    tensors["base_model.model.model.layers.0.mlp.up_proj.lora_B.weight"] = torch.zeros(64, 2)
    save_file(tensors, path)
    with pytest.raises(AdapterMismatchError, match="up_proj"):
        loralab.load_adapter(make_model(), saved)


def test_duplicate_name_is_refused(saved, make_model):
    model = make_model()
    loralab.load_adapter(model, saved, name="x")
    with pytest.raises(loralab.LoraLabError, match="already has an adapter named 'x'"):
        loralab.load_adapter(model, saved, name="x")


def test_save_is_atomic_and_has_no_temp_files(saved):
    assert sorted(p.name for p in saved.iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_a_loaded_adapter_takes_the_models_mode(make_model, randomize, tmp_path, tokens, mode):
    """load_adapter on a model in eval mode: no dropout, two forwards are identical (was: dropout stayed on)."""
    source = make_model()
    loralab.add_adapter(source, loralab.LoraConfig(r=2, alpha=4, dropout=0.5, target_modules="all-linear"))
    randomize(source)
    folder = loralab.save_adapter(source, tmp_path / "adapter")
    model = getattr(make_model(), mode)()
    loralab.load_adapter(model, folder, name="loaded")
    loralab.set_adapter(model, "loaded")
    assert all(module.training == (mode == "train") for _, module in adapter_modules(model))
    with torch.no_grad():
        first, second = model(tokens).logits, model(tokens).logits
    if mode == "eval":
        torch.testing.assert_close(first, second, rtol=0, atol=0)
    else:
        assert not torch.equal(first, second)  # dropout on the adapter's input while training
