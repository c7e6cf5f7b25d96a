"""The user API misused: invalid adapter names. Each gives a one-line LoraLabError or the behaviour
a user expects, and leaves the model consistent."""

import pytest
import torch

import loralab
from loralab.errors import ConfigError
from loralab.lora.interface import adapter_modules

BAD_NAMES = ["", "a.b", ".", "training", "keys", "forward", 3, None]


def _config(**extra):
    return loralab.LoraConfig(r=2, alpha=4, target_modules=["q_proj", "v_proj"], **extra)


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _same(before, model):
    after = model.state_dict()
    return before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
def test_add_adapter_refuses_invalid_names_before_changing_anything(make_model, name):
    model = make_model()
    before = _state(model)
    with pytest.raises(ConfigError, match="invalid adapter name"):
        loralab.add_adapter(model, _config(), name=name)
    assert _same(before, model) and not list(adapter_modules(model)) and "loralab_adapters" not in model.__dict__


@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
def test_load_adapter_refuses_invalid_names(make_model, randomize, tmp_path, name):
    source = make_model()
    loralab.add_adapter(source, _config())
    folder = loralab.save_adapter(randomize(source), tmp_path / "adapter")
    model = make_model()
    loralab.add_adapter(model, _config(), name="first")
    before = _state(model)
    with pytest.raises(ConfigError, match="invalid adapter name"):
        loralab.load_adapter(model, folder, name=name)
    assert _same(before, model) and list(model.loralab_adapters.configs) == ["first"]


@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
def test_combine_adapters_refuses_invalid_names(make_model, randomize, name):
    model = make_model()
    loralab.add_adapter(model, _config())
    randomize(model)
    before = _state(model)
    with pytest.raises(ConfigError, match="invalid adapter name"):
        loralab.combine_adapters(model, ["default"], name=name)
    assert _same(before, model) and list(model.loralab_adapters.configs) == ["default"]


def test_valid_unusual_names_still_work(make_model, tokens):
    model = make_model()
    for name in ("math v2", "é", "0", "a/b", "a-b_c"):
        loralab.add_adapter(model, _config(), name=name)
    loralab.combine_adapters(model, ["0", "a/b"], name="mix-1", method="cat")
    assert "mix-1" in model.loralab_adapters.configs
