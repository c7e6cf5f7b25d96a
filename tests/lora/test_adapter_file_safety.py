"""Adapter files a careless or hostile user may hand over: non-finite or non-float tensors, a file
where the folder belongs, saving onto a file, and the permissions of what is written."""

import os
import stat

import pytest
import torch
from safetensors.torch import load_file, save_file

import loralab
from loralab.errors import AdapterFileError
from loralab.lora.interface import adapter_modules

WEIGHTS = "adapter_model.safetensors"
#: one tensor of each kind a file holds: the factors, DoRA's magnitude, a saved bias, a modules_to_save copy
KINDS = ["lora_A", "lora_B", "lora_magnitude_vector", "base_layer.bias", "lm_head.weight"]


@pytest.fixture
def saved(make_model, randomize, tmp_path):
    model = make_model(attention_bias=True)
    config = loralab.LoraConfig(r=2, alpha=4, target_modules=["q_proj"], use_dora=True, bias="lora_only", modules_to_save=["lm_head"])
    loralab.add_adapter(model, config)
    randomize(model)
    return loralab.save_adapter(model, tmp_path / "adapter")


def _damage(folder, kind, change):
    """Rewrite the file's first tensor whose key contains ``kind`` with ``change(tensor)``; its key."""
    tensors = load_file(str(folder / WEIGHTS))
    key = next(k for k in sorted(tensors) if kind in k)
    tensors[key] = change(tensors[key])
    save_file(tensors, str(folder / WEIGHTS))
    return key


def _with(value):
    def change(tensor):
        tensor = tensor.clone()
        tensor.view(-1)[0] = value
        return tensor

    return change


def _refusals(folder, make_model):
    """(model, call) for each reader of an adapter folder; the model must stay unadapted."""
    model = make_model(attention_bias=True)
    yield model, lambda: loralab.load_adapter(model, folder)
    yield None, lambda: loralab.merge_state_dict(make_model(attention_bias=True).state_dict(), folder)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("kind", KINDS)
def test_non_finite_tensors_are_refused_naming_them(saved, make_model, kind, value):
    key = _damage(saved, kind, _with(value))
    for model, call in _refusals(saved, make_model):
        with pytest.raises(AdapterFileError, match=rf"tensor {key} holds NaN or infinite values"):
            call()
        assert model is None or not list(adapter_modules(model))


@pytest.mark.parametrize("dtype", [torch.int32, torch.int64, torch.uint8, torch.bool])
@pytest.mark.parametrize("kind", KINDS)
def test_non_float_tensors_are_refused_naming_them_and_their_dtype(saved, make_model, kind, dtype):
    key = _damage(saved, kind, lambda t: (t * 4).to(dtype))
    name = key.removeprefix("base_model.model.").replace(".base_layer.", ".")  # a bias or copy: named as in the plain model
    for model, call in _refusals(saved, make_model):
        with pytest.raises(AdapterFileError, match=rf"tensor (base_model\.model\.)?{name} has dtype {dtype}, but it must be floating point"):
            call()
        assert model is None or not list(adapter_modules(model))


def test_float_files_of_other_precisions_still_load(saved, make_model, tokens):
    _damage(saved, "lora_B", lambda t: t.to(torch.bfloat16))
    loralab.load_adapter(make_model(attention_bias=True), saved)


def test_a_file_given_for_the_folder_says_so(saved, make_model):
    for path in (saved / WEIGHTS, saved / "adapter_config.json"):
        with pytest.raises(AdapterFileError, match=r"is a file; give the folder that holds adapter_config\.json"):
            loralab.load_adapter(make_model(attention_bias=True), path)
        with pytest.raises(AdapterFileError, match="is a file"):
            loralab.merge_state_dict(make_model().state_dict(), path)


@pytest.mark.parametrize("where", ["the file", "under the file"])
def test_saving_onto_a_file_is_refused(make_model, tmp_path, where):
    model = make_model()
    loralab.add_adapter(model, loralab.LoraConfig(r=2, target_modules=["q_proj"]))
    blocker = tmp_path / "notes.txt"
    blocker.write_text("mine")
    target = blocker if where == "the file" else blocker / "adapter"
    with pytest.raises(AdapterFileError, match=rf"{blocker} is a file; give a folder path"):
        loralab.save_adapter(model, target)
    assert blocker.read_text() == "mine"


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)], ids=["022", "077", "002"])
def test_written_files_get_the_users_umask(make_model, tmp_path, umask, mode):
    model = make_model()
    loralab.add_adapter(model, loralab.LoraConfig(r=2, target_modules=["q_proj"]))
    (tmp_path / "adapter").mkdir()
    (tmp_path / "adapter" / WEIGHTS).write_bytes(b"")  # replacing an existing file gives the same mode
    old = os.umask(umask)
    try:
        folder = loralab.save_adapter(model, tmp_path / "adapter")
    finally:
        os.umask(old)
    modes = {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in folder.iterdir()}
    assert modes == {"adapter_config.json": oct(mode), WEIGHTS: oct(mode)}  # and no temporary file is left
