"""Adapters on a whole model: equivalences, switching, combining, merging a state dict."""

import pytest
import torch

import loralab
from loralab.errors import ConfigError
from loralab.lora.interface import adapter_modules
from loralab.lora.layers import LoraLayer


def _adapted(make_model, randomize, kind="llama", seed=0, **cfg):
    model = make_model(kind)
    loralab.add_adapter(model, loralab.LoraConfig(**{"r": 4, "alpha": 8, **cfg}))
    return randomize(model, seed)


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_unmerged_merged_unloaded_and_reloaded_agree(kind, make_model, randomize, tokens, tmp_path):
    base = make_model(kind)(tokens).logits
    model = _adapted(make_model, randomize, kind, target_modules="all-linear")
    ref = model(tokens).logits
    assert not torch.allclose(ref, base, atol=1e-3)
    loralab.save_adapter(model, tmp_path)
    for step in ("merge", "merge", "unmerge", "unmerge", "merge"):
        getattr(loralab, step)(model)
        torch.testing.assert_close(model(tokens).logits, ref, atol=1e-5, rtol=1e-5)
    plain = loralab.unload(model, merge=True)
    assert not list(adapter_modules(plain))
    torch.testing.assert_close(plain(tokens).logits, ref, atol=1e-5, rtol=1e-5)

    fresh = make_model(kind)
    loralab.load_adapter(fresh, tmp_path)
    torch.testing.assert_close(fresh(tokens).logits, ref, atol=1e-5, rtol=1e-5)
    base_again = loralab.unload(fresh, merge=False)
    torch.testing.assert_close(base_again(tokens).logits, base, atol=1e-5, rtol=1e-5)


def test_add_adapter_freezes_base_and_gradients_reach_only_adapters(make_model, tokens):
    model = make_model(attention_bias=True)
    cfg = loralab.LoraConfig(r=2, target_modules=["q_proj"], bias="lora_only", modules_to_save=["lm_head"])
    loralab.add_adapter(model, cfg)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    model(tokens, labels=tokens).loss.backward()
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    # B = 0 at init: A gets no gradient yet, B does; the q_proj biases and the lm_head copy train.
    expected = {n for n in before if "lora_B" in n or n.endswith("q_proj.base_layer.bias") or "copies.default" in n}
    assert with_grad == expected
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == expected | {n for n in before if "lora_A" in n}


def test_switching_gives_each_adapters_own_outputs(make_model, randomize, tokens, tmp_path):
    model = make_model()
    base = model(tokens).logits
    loralab.add_adapter(model, loralab.LoraConfig(r=2, target_modules=["q_proj", "v_proj"]), name="a")
    randomize(model, seed=1)
    out_a = model(tokens).logits
    loralab.add_adapter(model, loralab.LoraConfig(r=3, target_modules=["up_proj"]), name="b")
    torch.testing.assert_close(model(tokens).logits, out_a)  # added inactive
    loralab.set_adapter(model, "b")
    randomize(model, seed=2)
    out_b = model(tokens).logits
    assert not torch.allclose(out_a, out_b, atol=1e-3) and not torch.allclose(out_b, base, atol=1e-3)
    loralab.set_adapter(model, "a")
    torch.testing.assert_close(model(tokens).logits, out_a)
    with loralab.disabled(model):
        torch.testing.assert_close(model(tokens).logits, base)
    torch.testing.assert_close(model(tokens).logits, out_a)
    loralab.merge(model)
    with loralab.disabled(model):  # merged adapters are taken out too
        torch.testing.assert_close(model(tokens).logits, base, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(model(tokens).logits, out_a, atol=1e-5, rtol=1e-5)
    loralab.unmerge(model)

    # Only the active adapter trains.
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.endswith(".a") for n in trainable)

    loralab.delete_adapter(model, "a")
    with pytest.raises(ConfigError, match="no adapter named 'a'"):
        loralab.set_adapter(model, "a")
    loralab.set_adapter(model, "b")
    torch.testing.assert_close(model(tokens).logits, out_b)
    loralab.delete_adapter(model, "b")  # the last one: the plain model comes back
    assert not list(adapter_modules(model))
    torch.testing.assert_close(model(tokens).logits, base)


def test_disabled_nests(make_model, randomize, tokens):
    model = make_model()
    base = model(tokens).logits
    loralab.add_adapter(model, loralab.LoraConfig(r=2, target_modules=["q_proj"]))
    randomize(model)
    adapted = model(tokens).logits
    with loralab.disabled(model):
        with loralab.disabled(model):
            torch.testing.assert_close(model(tokens).logits, base)
        torch.testing.assert_close(model(tokens).logits, base)  # the inner exit must not switch adapters back on
    torch.testing.assert_close(model(tokens).logits, adapted)


def test_two_active_adapters_add_up(make_model, randomize, tokens):
    model = make_model()
    base = model(tokens).logits
    loralab.add_adapter(model, loralab.LoraConfig(r=2, target_modules=["q_proj"]), name="a")
    loralab.add_adapter(model, loralab.LoraConfig(r=2, target_modules=["q_proj"]), name="b")
    loralab.set_adapter(model, ["a", "b"])
    randomize(model)
    layer = next(l for _, l in adapter_modules(model) if isinstance(l, LoraLayer))
    x = torch.randn(3, layer.base_layer.in_features)
    expected = layer.base_layer(x) + x @ (layer.delta_weight("a") + layer.delta_weight("b")).T
    torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(model(tokens).logits, base, atol=1e-3)


def _combined_deltas(model, name):
    return {p: l.delta_weight(name) for p, l in adapter_modules(model) if isinstance(l, LoraLayer) and name in l.specs}


def _two_adapters(make_model, randomize, r_a=2, r_b=3):
    model = make_model()
    loralab.add_adapter(model, loralab.LoraConfig(r=r_a, alpha=4, target_modules=["q_proj", "v_proj"]), name="a")
    loralab.add_adapter(model, loralab.LoraConfig(r=r_b, alpha=3, rslora=True, target_modules=["q_proj"]), name="b")
    loralab.set_adapter(model, ["a", "b"])
    randomize(model)
    return model


def test_cat_is_the_exact_weighted_sum(make_model, randomize, tokens):
    model = _two_adapters(make_model, randomize)
    da, db = _combined_deltas(model, "a"), _combined_deltas(model, "b")
    loralab.combine_adapters(model, ["a", "b"], weights=[0.7, -0.3], name="ab", method="cat")
    for path, delta in _combined_deltas(model, "ab").items():
        expected = 0.7 * da[path] + (-0.3 * db[path] if path in db else 0)
        torch.testing.assert_close(delta, expected, atol=1e-6, rtol=1e-5)
    assert model.loralab_adapters.configs["ab"].rank_for("model.layers.0.self_attn.q_proj") == 5


def test_svd_is_within_truncation_error(make_model, randomize):
    model = _two_adapters(make_model, randomize)
    da, db = _combined_deltas(model, "a"), _combined_deltas(model, "b")
    loralab.combine_adapters(model, ["a", "b"], weights=[1.0, 1.0], name="s", method="svd", svd_rank=2)
    for path, delta in _combined_deltas(model, "s").items():
        exact = da[path] + db.get(path, 0)
        S = torch.linalg.svdvals(exact)
        best_error = S[2:].square().sum().sqrt()  # Eckart–Young: the best rank-2 error
        torch.testing.assert_close(torch.linalg.matrix_norm(exact - delta), best_error, atol=1e-5, rtol=1e-4)


def test_linear_sums_factors_and_needs_equal_ranks(make_model, randomize):
    model = _two_adapters(make_model, randomize, r_a=2, r_b=3)
    with pytest.raises(ConfigError, match="equal ranks"):
        loralab.combine_adapters(model, ["a", "b"], method="linear")
    model = _two_adapters(make_model, randomize, r_a=2, r_b=2)
    loralab.combine_adapters(model, ["a", "b"], weights=[0.5, 0.5], name="lin", method="linear")
    for path, layer in adapter_modules(model):
        if isinstance(layer, LoraLayer) and "lin" in layer.specs:
            A = sum(0.5**0.5 * layer.specs[n].scale * layer.lora_A[n] for n in ("a", "b") if n in layer.specs)
            B = sum(0.5**0.5 * layer.lora_B[n] for n in ("a", "b") if n in layer.specs)
            torch.testing.assert_close(layer.delta_weight("lin"), (B @ A).detach())


def test_combined_adapter_saves_and_loads(make_model, randomize, tokens, tmp_path):
    model = _two_adapters(make_model, randomize)
    loralab.combine_adapters(model, ["a", "b"], weights=[0.7, 0.3], name="ab", method="cat")
    loralab.set_adapter(model, "ab")
    out = model(tokens).logits
    loralab.save_adapter(model, tmp_path, name="ab")
    fresh = make_model()
    loralab.load_adapter(fresh, tmp_path, name="x")
    torch.testing.assert_close(fresh(tokens).logits, out, atol=1e-5, rtol=1e-5)


def test_merge_state_dict_hand_computed(make_model, randomize, tokens, tmp_path):
    model = _adapted(make_model, randomize, target_modules=["q_proj", "embed_tokens"], alpha=6, r=3)
    loralab.save_adapter(model, tmp_path)
    base_sd = make_model().state_dict()
    snapshot = {k: v.clone() for k, v in base_sd.items()}
    merged = loralab.merge_state_dict(base_sd, tmp_path)
    for key in base_sd:
        torch.testing.assert_close(base_sd[key], snapshot[key], atol=0, rtol=0)  # input untouched
    for path, layer in adapter_modules(model):
        A, B = layer.lora_A["default"].detach(), layer.lora_B["default"].detach()
        hand = 2.0 * B @ A  # scale = 6 / 3
        if "embed" in path:
            hand = hand.T
        torch.testing.assert_close(merged[f"{path}.weight"], snapshot[f"{path}.weight"] + hand)
    fresh = make_model()
    fresh.load_state_dict(merged)
    torch.testing.assert_close(fresh(tokens).logits, model(tokens).logits, atol=1e-5, rtol=1e-5)


def test_target_matching_nothing_lists_linear_modules(make_model):
    with pytest.raises(ConfigError, match=r"matches no module.*gate_proj.*q_proj"):
        loralab.add_adapter(make_model(), loralab.LoraConfig(target_modules=["qproj"]))


def test_unsupported_target_type_is_named(make_model):
    with pytest.raises(ConfigError, match="input_layernorm"):
        loralab.add_adapter(make_model(), loralab.LoraConfig(target_modules=["input_layernorm"]))


def test_all_linear_skips_output_head(make_model):
    model = loralab.add_adapter(make_model(), loralab.LoraConfig(target_modules="all-linear"))
    paths = [p for p, _ in adapter_modules(model)]
    assert "lm_head" not in paths and len(paths) == 2 * 7


def test_trainable_parameters_report(make_model, capsys):
    model = loralab.add_adapter(make_model(), loralab.LoraConfig(r=2, target_modules=["q_proj"]))
    count = loralab.trainable_parameters(model)
    q = model.model.layers[0].self_attn.q_proj.base_layer
    assert count.trainable == 2 * 2 * (q.in_features + q.out_features)
    assert count.total == sum(p.numel() for p in model.parameters())
    assert capsys.readouterr().out.strip() == str(count) and str(count).startswith("trainable ")
