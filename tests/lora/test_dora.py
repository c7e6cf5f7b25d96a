"""DoRA (weight-decomposed LoRA): PEFT as the oracle both ways (Linear, GPT-2 Conv1D, embeddings, dropout in
training), merge = unmerge, a float64 gradcheck, merge_state_dict, combine's refusal, LoRA+ groups."""

import copy
import warnings

import peft
import pytest
import torch
from transformers.pytorch_utils import Conv1D

import loralab
from loralab.errors import AdapterFileError, ConfigError
from loralab.lora import dropout_path
from loralab.lora import fused_dora as fused_dora_module
from loralab.lora.layers import AdapterSpec, LoraConv1D, LoraEmbedding, LoraLinear
from loralab.lora.variants import dora as dora_module

#: Linear / Conv1D and the embedding (GPT-2's wte is tied to its output head, so merges change lm_head too)
TARGETS = {"llama": ["q_proj", "v_proj", "down_proj", "embed_tokens"], "gpt2": ["c_attn", "c_fc", "wte"]}
UNTIED = {"llama": TARGETS["llama"], "gpt2": ["c_attn", "c_fc"]}


def _dora(targets, **extra):
    return loralab.LoraConfig(r=4, alpha=8, use_dora=True, target_modules=targets, **extra)


def _peft_dora(targets, **extra):
    return peft.LoraConfig(r=4, lora_alpha=8, use_dora=True, target_modules=targets, init_lora_weights=False, **extra)


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_loralab_dora_adapter_loads_in_peft_with_same_logits(kind, make_model, randomize, tokens, tmp_path):
    model = make_model(kind)
    base_logits = model(tokens).logits
    loralab.add_adapter(model, _dora(TARGETS[kind]))
    torch.testing.assert_close(model(tokens).logits, base_logits)  # m = ‖W‖ and B·A = 0: unchanged at start
    randomize(model)
    ours = model(tokens).logits
    assert not torch.allclose(ours, base_logits, atol=1e-3)
    loralab.save_adapter(model, tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = peft.PeftModel.from_pretrained(make_model(kind), tmp_path)
    assert sum("lora_magnitude_vector" in n for n, _ in theirs.named_modules()) >= len(TARGETS[kind])
    torch.testing.assert_close(theirs(tokens).logits, ours, atol=1e-5, rtol=1e-5)


def _peft_model(kind, make_model, **extra):
    """A PEFT DoRA model with random B and a magnitude that is not ‖W + ΔL‖ (direction and length both matter)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = peft.get_peft_model(make_model(kind), _peft_dora(TARGETS[kind], **extra))
    with torch.no_grad():
        gen = torch.Generator().manual_seed(5)
        for name, param in theirs.named_parameters():
            if "lora_magnitude_vector" in name:
                param.mul_(1 + 0.3 * torch.randn(param.shape, generator=gen))
    return theirs


def _save(peft_model, folder):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Setting save_embedding_layers to True": the embeddings are saved too
        peft_model.save_pretrained(folder)


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_peft_dora_adapter_loads_in_loralab_with_same_logits(kind, make_model, tokens, tmp_path):
    theirs = _peft_model(kind, make_model)
    expected = theirs(tokens).logits
    _save(theirs, tmp_path)
    model = make_model(kind)
    assert not torch.allclose(model(tokens).logits, expected, atol=1e-3)
    loralab.load_adapter(model, tmp_path)
    assert loralab.lora.registry.registry(model).configs["default"].use_dora
    kinds = {type(m) for m in model.modules()}
    assert {LoraEmbedding, LoraLinear if kind == "llama" else LoraConv1D} <= kinds
    torch.testing.assert_close(model(tokens).logits, expected, atol=1e-5, rtol=1e-5)


class _LoralabMask(torch.nn.Module):
    """PEFT's dropout module drawing loralab's keep mask (``dropout_path.dropout``): same seed, same masks."""

    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, x):
        return dropout_path.dropout(x, self.p) if self.training else x


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_training_forward_with_dropout_matches_peft(kind, make_model, tokens, tmp_path):
    """Dropout applies to x before both W x and B A x (and never to embeddings): same seed, same logits as PEFT.
    PEFT's dropout draws loralab's mask (a different random stream from torch's dropout), one per layer as loralab."""
    theirs = _peft_model(kind, make_model, lora_dropout=0.3)
    for module in theirs.modules():
        if isinstance(module, peft.tuners.lora.LoraLayer) and "default" in module.lora_dropout:
            module.lora_dropout["default"] = _LoralabMask(module.lora_dropout["default"].p)
    _save(theirs, tmp_path)
    model = make_model(kind)
    loralab.load_adapter(model, tmp_path)
    theirs.train(), model.train()
    torch.manual_seed(7)
    expected = theirs(tokens).logits
    torch.manual_seed(7)
    torch.testing.assert_close(model(tokens).logits, expected, atol=1e-5, rtol=1e-5)
    model.eval()
    assert not torch.allclose(model(tokens).logits, expected, atol=1e-4)  # dropout did change the output


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_merged_equals_unmerged_and_unmerge_restores_the_base(kind, make_model, randomize, tokens):
    model = make_model(kind)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    loralab.add_adapter(model, _dora(UNTIED[kind]))
    randomize(model)
    unmerged = model(tokens).logits
    loralab.merge(model)
    merged_weights = {k: v.clone() for k, v in model.state_dict().items()}
    loralab.merge(model)  # idempotent
    assert all(torch.equal(v, merged_weights[k]) for k, v in model.state_dict().items())
    torch.testing.assert_close(model(tokens).logits, unmerged, atol=1e-5, rtol=1e-5)
    loralab.unmerge(model)
    loralab.unmerge(model)  # idempotent
    plain = loralab.unload(copy.deepcopy(model), merge=False)
    for key, value in plain.state_dict().items():
        torch.testing.assert_close(value, weights[key], atol=2e-6, rtol=1e-5)
    torch.testing.assert_close(model(tokens).logits, unmerged, atol=1e-5, rtol=1e-5)


def test_a_dora_and_a_plain_adapter_active_together_merge_to_the_same_outputs(make_model, randomize, tokens):
    """The forward adds both contributions, each computed from the current W; merging DoRA first keeps that."""
    model = make_model("llama")
    loralab.add_adapter(model, loralab.LoraConfig(r=2, alpha=4, target_modules=["q_proj", "v_proj"]), "plain")
    loralab.add_adapter(model, _dora(["q_proj", "o_proj"]), "dora")
    loralab.set_adapter(model, ["plain", "dora"])
    randomize(model)
    both = model(tokens).logits
    loralab.merge(model)
    torch.testing.assert_close(model(tokens).logits, both, atol=1e-5, rtol=1e-5)
    with loralab.disabled(model):  # unmerges, then merges back in the order it found
        pass
    torch.testing.assert_close(model(tokens).logits, both, atol=1e-5, rtol=1e-5)


def test_loading_an_adapter_into_a_layer_keeps_what_was_merged():
    layer = _layer("linear")
    layer.add("b", AdapterSpec(r=2, scale=0.5))
    with torch.no_grad():
        layer.lora_B["b"].normal_()
    layer.merge(["b"])
    layer.merge(["a"])
    merged = layer.base_layer.weight.clone()
    layer.load_adapter_state("b", layer.adapter_state("b"))  # unmerges both, loads, merges both back in order
    assert layer.merged == ["b", "a"]
    torch.testing.assert_close(layer.base_layer.weight, merged, atol=1e-12, rtol=0)


def _layer(kind: str):
    """A float64 LoRA layer of each base kind with one DoRA adapter "a": random B, a magnitude away from ‖W‖."""
    base = {"linear": lambda: torch.nn.Linear(5, 4), "conv1d": lambda: Conv1D(4, 5), "embedding": lambda: torch.nn.Embedding(6, 4)}[kind]()
    wrapper = {"linear": LoraLinear, "conv1d": LoraConv1D, "embedding": LoraEmbedding}[kind]
    if kind == "conv1d":
        torch.nn.init.normal_(base.bias)
    layer = wrapper(base.double())
    layer.add("a", AdapterSpec(r=2, scale=1.5, variant="dora"))
    layer.set_active(["a"])
    with torch.no_grad():
        layer.lora_A["a"].normal_()
        layer.lora_B["a"].normal_()
        layer.variant_params["a"]["magnitude"].mul_(1 + 0.3 * torch.randn(4, dtype=torch.float64))
    return layer


def _reference(kind, layer, x, A, B, m):
    """DoRA written out: x ((m / ‖W + sBA‖) ⊙ (W + sBA))ᵀ + b, W as (d_out, d_in), the norm a constant."""
    W = {"linear": layer.base_layer.weight, "conv1d": layer.base_layer.weight.T, "embedding": layer.base_layer.weight.T}[kind]
    norm = torch.linalg.vector_norm(W + 1.5 * B.detach() @ A.detach(), dim=1)
    W_dora = (m / norm)[:, None] * (W + 1.5 * B @ A)
    if kind == "embedding":
        return W_dora.T[x]
    return x @ W_dora.T + layer.base_layer.bias


def _call(layer, x, A, B, m):
    """The layer's forward as a function of (A, B, m), by swapping them in as the adapter's parameters."""
    holders = (layer.lora_A, "a"), (layer.lora_B, "a"), (layer.variant_params["a"], "magnitude")
    saved = [holder._parameters[key] for holder, key in holders]
    for (holder, key), value in zip(holders, (A, B, m)):
        holder._parameters[key] = value
    try:
        return layer(x)
    finally:
        for (holder, key), value in zip(holders, saved):
            holder._parameters[key] = value


@pytest.mark.parametrize("kind", ["linear", "conv1d", "embedding"])
def test_dora_layer_gradcheck_in_float64(kind, monkeypatch):
    torch.manual_seed(0)
    layer = _layer(kind)
    x = torch.randint(0, 6, (3, 2)) if kind == "embedding" else torch.randn(3, 5, dtype=torch.float64)
    params = layer.lora_A["a"], layer.lora_B["a"], layer.variant_params["a"]["magnitude"]
    A, B, m = (t.detach().clone().requires_grad_(True) for t in params)
    out = _call(layer, x, A, B, m)
    torch.testing.assert_close(out, _reference(kind, layer, x, A, B, m))
    assert not torch.allclose(out, layer.base_layer(x), atol=1e-3)
    # the gradients equal the written-out reference's, where the norm is detached (the paper's Sec. 4.3, PEFT)
    want = torch.autograd.grad(_reference(kind, layer, x, A, B, m).sum(), (A, B, m))
    for got, expected in zip(torch.autograd.grad(out.sum(), (A, B, m)), want):
        torch.testing.assert_close(got, expected)
    # gradcheck in A, B, m (and x): with the norm held at its value here, as the backward treats it
    with torch.no_grad():
        W = layer.canonical_weight()
        norm = torch.linalg.vector_norm(W + 1.5 * B @ A, dim=1)
    for module in (dora_module, fused_dora_module):  # the separate path's name and the fused layer's
        monkeypatch.setattr(module, "direction_norm", lambda *_: norm)
    if kind == "embedding":  # token ids: no gradient in x
        assert torch.autograd.gradcheck(lambda A_, B_, m_: _call(layer, x, A_, B_, m_), (A, B, m))
    else:
        x = x.clone().requires_grad_(True)
        assert torch.autograd.gradcheck(lambda A_, B_, m_, x_: _call(layer, x_, A_, B_, m_), (A, B, m, x))


@pytest.mark.parametrize("fused", [True, False])
def test_dropout_in_training_matches_the_formula_and_eval_has_none(fused):
    torch.manual_seed(0)
    layer = LoraLinear(torch.nn.Linear(6, 3).requires_grad_(False))
    layer.fused = fused
    layer.add("a", AdapterSpec(r=2, scale=2.0, dropout=0.5, variant="dora"))
    layer.set_active(["a"])
    with torch.no_grad():
        layer.lora_B["a"].normal_()
    x = torch.randn(4, 6)
    layer.eval()
    W, b, A, B = layer.base_layer.weight, layer.base_layer.bias, layer.lora_A["a"], layer.lora_B["a"]
    m = layer.variant_params["a"]["magnitude"]
    g = m / torch.linalg.vector_norm(W + 2.0 * B @ A, dim=1)
    torch.testing.assert_close(layer(x), x @ (g[:, None] * (W + 2.0 * B @ A)).T + b)
    layer.train()
    torch.manual_seed(1)
    out = layer(x)
    torch.manual_seed(1)
    keep, p_used = dropout_path.keep_mask(x, 0.5)  # the mask drawn from the same seed
    dropped = x * keep / (1 - p_used)
    expected = x @ W.T + b + (g - 1) * (dropped @ W.T) + g * (dropped @ A.T @ B.T) * 2.0
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_merge_state_dict_equals_the_live_merge(kind, make_model, randomize, tmp_path):
    model = make_model(kind)
    base_state = {k: v.clone() for k, v in model.state_dict().items()}
    loralab.add_adapter(model, _dora(UNTIED[kind]))
    randomize(model)
    loralab.save_adapter(model, tmp_path)
    adapted = sum(isinstance(m, (LoraLinear, LoraConv1D, LoraEmbedding)) for m in model.modules())
    merged = loralab.merge_state_dict(base_state, tmp_path)
    live = loralab.unload(model, merge=True).state_dict()
    changed = 0
    for key, value in live.items():
        torch.testing.assert_close(merged[key], value, atol=1e-6, rtol=1e-5)
        changed += not torch.equal(merged[key], base_state[key])
    assert changed == adapted > len(UNTIED[kind])  # every adapted weight (in both blocks), and nothing else


def test_combine_refuses_dora(make_model):
    model = make_model("llama")
    loralab.add_adapter(model, _dora(["q_proj"]), "a")
    loralab.add_adapter(model, loralab.LoraConfig(r=4, target_modules=["q_proj"]), "b")
    for method in ("cat", "linear", "svd"):
        with pytest.raises(ConfigError, match="'a' is a dora adapter.*cannot combine it exactly"):
            loralab.combine_adapters(model, ["a", "b"], method=method)
    assert loralab.lora.registry.registry(model).configs.keys() == {"a", "b"}


def test_a_variant_refuses_layouts_it_does_not_list_before_touching_the_model(make_model, monkeypatch):
    from loralab.lora.variants.dora import Dora

    monkeypatch.setattr(Dora, "layouts", ("linear", "conv1d"))
    model = make_model("llama")
    with pytest.raises(ConfigError, match="dora variant works on linear, conv1d layers only, not on model.embed_tokens"):
        loralab.add_adapter(model, _dora(["q_proj", "embed_tokens"]))
    assert not any(isinstance(m, LoraLinear) for m in model.modules())


def test_variant_flags_are_config_fields_and_file_keys(make_model, tmp_path):
    import dataclasses
    import json

    assert "use_dora" in {f.name for f in dataclasses.fields(loralab.LoraConfig)}
    with pytest.raises(ConfigError, match="use_dora must be true or false"):
        loralab.LoraConfig(use_dora="yes")
    model = loralab.add_adapter(make_model("llama"), _dora(["q_proj"]))
    loralab.save_adapter(model, tmp_path)
    assert json.loads((tmp_path / "adapter_config.json").read_text())["use_dora"] is True


def test_a_file_whose_magnitude_does_not_fit_its_factors_is_refused(make_model, tmp_path):
    from safetensors.torch import load_file, save_file

    loralab.save_adapter(loralab.add_adapter(make_model("llama"), _dora(["q_proj"])), tmp_path)
    tensors = load_file(str(tmp_path / "adapter_model.safetensors"))
    key = next(k for k in tensors if k.endswith("lora_magnitude_vector"))
    tensors[key] = tensors[key][:-1]
    save_file(tensors, str(tmp_path / "adapter_model.safetensors"))
    with pytest.raises(AdapterFileError, match="lora_magnitude_vector has shape"):
        loralab.load_adapter(make_model("llama"), tmp_path)


def test_loraplus_gives_b_its_ratio_and_the_magnitude_the_base_lr(make_model):
    from loralab.train.optim import OptimizerConfig, parameter_groups

    model = loralab.add_adapter(make_model("llama"), _dora(TARGETS["llama"]))
    groups = parameter_groups(model, OptimizerConfig(lr=1e-3, loraplus_ratio=16, weight_decay=0.1))
    named = dict(model.named_parameters())
    magnitudes = {id(p) for n, p in named.items() if "magnitude" in n}
    bs = {id(layer.lora_B["default"]) for layer in model.modules() if isinstance(layer, (LoraLinear, LoraEmbedding))}
    group_of = {id(p): g for g in groups for p in g["params"]}
    assert magnitudes and bs and set(group_of) == {id(p) for p in named.values() if p.requires_grad}
    for i in magnitudes:
        assert group_of[i]["lr"] == 1e-3 and group_of[i]["weight_decay"] == 0.0
    for i in bs:
        assert group_of[i]["lr"] == pytest.approx(16e-3) and group_of[i]["weight_decay"] == 0.1


def _changes(layer):
    """Ways A, B or the base weight change after a forward (each must make the next forward recompute the norm)."""
    A, B, W = layer.lora_A["a"], layer.lora_B["a"], layer.base_layer.weight
    return {
        "A in place (an optimizer step)": lambda: A.add_(0.1),
        "B in place": lambda: B.mul_(2.0),
        "base weight in place": lambda: W.mul_(1.5),
        "A replaced through .data": lambda: setattr(A, "data", A.data * 0.5),
        "adapter file loaded": lambda: layer.load_adapter_state("a", {k: v * 1.1 for k, v in layer.adapter_state("a").items()}),
        "merged then unmerged (W rewritten)": lambda: (layer.merge(["a"]), layer.unmerge()),
    }


@pytest.mark.parametrize("fused", [True, False])
def test_without_a_graph_the_norm_is_kept_and_recomputed_after_any_change(fused, monkeypatch):
    """Evaluation and generation reuse ‖W + ΔL‖ across forwards; every change of A, B or W is seen."""
    calls = []
    original = dora_module.direction_norm
    monkeypatch.setattr(dora_module, "direction_norm", lambda *a: calls.append(1) or original(*a))
    torch.manual_seed(0)
    layer = LoraLinear(torch.nn.Linear(24, 20).requires_grad_(False))
    layer.add("a", AdapterSpec(r=4, scale=2.0, variant="dora"))
    layer.set_active(["a"])
    with torch.no_grad():
        layer.lora_B["a"].normal_()
        layer.variant_params["a"]["magnitude"].mul_(torch.rand(20) + 0.5)
    layer.fused = fused
    layer.eval()
    x = torch.randn(6, 24)

    def expected():
        W, b, A, B = (t.detach().double() for t in (layer.base_layer.weight, layer.base_layer.bias, layer.lora_A["a"], layer.lora_B["a"]))
        direction = W + 2.0 * B @ A
        g = layer.variant_params["a"]["magnitude"].detach().double() / torch.linalg.vector_norm(direction, dim=1)
        return (x.double() @ (g[:, None] * direction).T + b).float()

    with torch.no_grad():
        first, second = layer(x), layer(x)
    assert len(calls) == 1 and torch.equal(first, second)
    torch.testing.assert_close(first, expected(), rtol=1e-5, atol=1e-5)
    for what, change in _changes(layer).items():
        with torch.no_grad():
            change()
            before = len(calls)
            torch.testing.assert_close(layer(x), expected(), rtol=1e-5, atol=1e-5, msg=what)
            assert len(calls) == before + 1, what
    layer(x), layer(x)  # building a graph (training): computed at every call, nothing kept
    assert len(calls) == len(_changes(layer)) + 1 + (0 if fused else 2)
    with torch.no_grad():
        layer(x)  # still kept
        assert len(calls) == len(_changes(layer)) + 1 + (0 if fused else 2)
        layer.eval()  # setting the mode forgets it (FSDP gathers weights without bumping their version counters)
        layer(x)
    assert len(calls) == len(_changes(layer)) + 2 + (0 if fused else 2)


@pytest.mark.parametrize("autocast", [False, True])
@pytest.mark.parametrize("dtype, rtol", [(torch.float64, 1e-12), (torch.float32, 1e-5), (torch.bfloat16, 1e-5)])
def test_the_expanded_direction_norm_equals_the_formed_one(dtype, rtol, autocast):
    """‖W + s·B·A‖ from r-wide products only equals the norm of the formed (d_out, d_in) matrix, in float64,
    also inside bf16 autocast (whose products would be bf16)."""
    torch.manual_seed(0)
    W, A, B = torch.randn(40, 24).to(dtype), torch.randn(4, 24) * 0.3, torch.randn(40, 4) * 0.3
    scale = 2.0
    W[3] = (-scale * B[3].double() @ A.double()).to(dtype)  # a row the update cancels (exactly in float64)
    formed = torch.linalg.vector_norm(W.double() + scale * B.double() @ A.double(), dim=1)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        got = dora_module.direction_norm(W, A, B, scale)
    assert got.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    keep = torch.arange(40) != 3
    torch.testing.assert_close(got.double()[keep], formed[keep], rtol=rtol, atol=0)
    # where B·A cancels W's row, ‖W‖² − ‖…‖² loses digits: error ≤ √ε·‖W_i‖, never NaN
    assert torch.isfinite(got[3]) and abs(got[3].double() - formed[3]) <= 1e-3 * torch.linalg.vector_norm(W[3].double())
