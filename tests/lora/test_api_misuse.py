"""The user API misused: invalid adapter names, training a merged adapter, changing adapters inside ``disabled()``.
Each gives a one-line LoraLabError or the behaviour a user expects, and leaves the model consistent."""

import pytest
import torch

import loralab
from loralab.errors import ConfigError, LoraLabError
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


# -- backward after merge ------------------------------------------------------------------------
@pytest.mark.parametrize("mode, modules_to_save", [("train", None), ("train", ["lm_head"]), ("eval", ["embed_tokens"])])
def test_backward_through_a_merged_trainable_adapter_is_an_error(make_model, randomize, tokens, mode, modules_to_save):
    """Today: torch's 'does not require grad' (lora only), or a backward that silently leaves A and B without gradient."""
    model = make_model()
    loralab.add_adapter(model, _config(modules_to_save=modules_to_save))
    randomize(model)
    loralab.merge(model)
    getattr(model, mode)()
    loss = model(tokens).logits.float().pow(2).mean()
    with pytest.raises(LoraLabError, match=r"adapter 'default' is merged into the weights, so it cannot train: call loralab\.unmerge"):
        loss.backward()


def test_merged_inference_and_training_after_unmerge_are_unchanged(make_model, randomize, tokens):
    model = make_model()
    loralab.add_adapter(model, _config())
    randomize(model)
    expected = model(tokens).logits.detach()
    loralab.merge(model)
    for mode in (model.train, model.eval):
        mode()
        torch.testing.assert_close(model(tokens).logits, expected, atol=1e-5, rtol=1e-5)  # forward with grad on: fine
        with torch.no_grad():
            torch.testing.assert_close(model(tokens).logits, expected, atol=1e-5, rtol=1e-5)
    assert not model(tokens).logits.requires_grad  # eval mode, nothing else trains: no graph is built (no cost)
    loralab.unmerge(model)
    model(tokens).logits.pow(2).mean().backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if "lora_" in n)


def test_a_merged_frozen_adapter_under_a_trained_one_is_allowed(make_model, randomize, tokens):
    """Merging one adapter into the weights and training another on top is a legitimate workflow."""
    model = make_model()
    loralab.add_adapter(model, _config())
    loralab.add_adapter(model, _config(), name="top")
    randomize(model)
    loralab.merge(model, "default")
    loralab.set_adapter(model, "top")
    model(tokens).logits.pow(2).mean().backward()
    layer = next(layer for _, layer in adapter_modules(model))
    assert layer.lora_A["top"].grad is not None and layer.lora_A["default"].grad is None


# -- changing adapters inside disabled() -----------------------------------------------------------
SETUPS = {  # after adding "default" (active) and randomizing it
    "one": lambda m: None,
    "one merged": lambda m: loralab.merge(m),
    "two": lambda m: loralab.add_adapter(m, loralab.LoraConfig(r=3, target_modules=["q_proj", "k_proj"]), name="b"),
}
CHANGES = {
    "delete it, add another": [lambda m: loralab.delete_adapter(m, "default"), lambda m: loralab.add_adapter(m, _config(), name="new")],
    "delete it, add one elsewhere": [
        lambda m: loralab.delete_adapter(m, "default"),
        lambda m: loralab.add_adapter(m, loralab.LoraConfig(r=2, target_modules=["k_proj", "o_proj"]), name="new"),
    ],
    "delete it, add it again": [lambda m: loralab.delete_adapter(m, "default"), lambda m: loralab.add_adapter(m, _config())],
    "add one": [lambda m: loralab.add_adapter(m, loralab.LoraConfig(r=2, target_modules=["k_proj", "v_proj"]), name="c")],
}


def _snapshot(model, tokens):
    """Everything a user sees of the adapters: registry, each layer's active and merged ones, what trains, outputs."""
    reg = model.__dict__.get("loralab_adapters")
    return (
        None if reg is None else (list(reg.configs), reg.active),
        {p: (getattr(l, "active", None), list(getattr(l, "merged", []))) for p, l in adapter_modules(model)},
        {n for n, p in model.named_parameters() if p.requires_grad},
        model(tokens).logits.detach(),
    )


@pytest.mark.parametrize("setup, change", [(s, c) for s in SETUPS for c in CHANGES])
def test_adapters_changed_inside_disabled_end_as_if_changed_outside(make_model, randomize, tokens, setup, change):
    """Before the fix, exit restored deleted names as active (a later add_adapter raised KeyError), left a re-added
    adapter's layers inactive (it neither ran nor trained), raised KeyError for a new module, kept stale requires_grad."""
    models = []
    for inside in (False, True):
        torch.manual_seed(0)
        model = make_model()
        loralab.add_adapter(model, _config())
        randomize(model)
        SETUPS[setup](model)
        if inside:
            with loralab.disabled(model):
                for step in CHANGES[change]:
                    step(model)
        else:
            for step in CHANGES[change]:
                step(model)
        models.append(model)
    outside, inside = (_snapshot(m, tokens) for m in models)
    assert inside[:3] == outside[:3]
    torch.testing.assert_close(inside[3], outside[3])
    loralab.add_adapter(models[1], loralab.LoraConfig(r=2, target_modules=["up_proj"]), name="after")  # the registry is consistent
