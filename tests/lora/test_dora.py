"""DoRA (weight-decomposed LoRA): PEFT as the oracle both ways, merge = unmerge, a float64 gradcheck,
merge_state_dict, combine's refusal, LoRA+ groups, and the analysed ΔW."""

import copy
import warnings

import peft
import pytest
import torch

import loralab
from loralab.errors import ConfigError
from loralab.lora.layers import AdapterSpec, LoraLinear

TARGETS = {"llama": ["q_proj", "v_proj", "down_proj"], "gpt2": ["c_attn", "c_fc"]}


def _dora(kind, **extra):
    return loralab.LoraConfig(r=4, alpha=8, use_dora=True, target_modules=TARGETS[kind], **extra)


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_loralab_dora_adapter_loads_in_peft_with_same_logits(kind, make_model, randomize, tokens, tmp_path):
    model = make_model(kind)
    base_logits = model(tokens).logits
    loralab.add_adapter(model, _dora(kind))
    torch.testing.assert_close(model(tokens).logits, base_logits)  # m = ‖W‖ and B = 0: unchanged at start
    randomize(model)
    ours = model(tokens).logits
    assert not torch.allclose(ours, base_logits, atol=1e-3)
    loralab.save_adapter(model, tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = peft.PeftModel.from_pretrained(make_model(kind), tmp_path)
    torch.testing.assert_close(theirs(tokens).logits, ours, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_peft_dora_adapter_loads_in_loralab_with_same_logits(kind, make_model, tokens, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = peft.get_peft_model(make_model(kind), peft.LoraConfig(r=4, lora_alpha=8, use_dora=True,
                                                                        target_modules=TARGETS[kind], init_lora_weights=False))  # fmt: skip
        with torch.no_grad():  # a magnitude that is not ‖W + ΔL‖: the direction and the length both matter
            gen = torch.Generator().manual_seed(5)
            for name, param in theirs.named_parameters():
                if "lora_magnitude_vector" in name:
                    param.mul_(1 + 0.3 * torch.randn(param.shape, generator=gen))
        expected = theirs(tokens).logits
        theirs.save_pretrained(tmp_path)
    model = make_model(kind)
    assert not torch.allclose(model(tokens).logits, expected, atol=1e-3)
    loralab.load_adapter(model, tmp_path)
    assert loralab.lora.registry.registry(model).configs["default"].use_dora
    torch.testing.assert_close(model(tokens).logits, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_merged_equals_unmerged_and_unmerge_restores_the_base(kind, make_model, randomize, tokens):
    model = make_model(kind)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    loralab.add_adapter(model, _dora(kind))
    randomize(model)
    unmerged = model(tokens).logits
    loralab.merge(model)
    loralab.merge(model)  # idempotent
    torch.testing.assert_close(model(tokens).logits, unmerged, atol=1e-5, rtol=1e-5)
    loralab.unmerge(model)
    plain = loralab.unload(copy.deepcopy(model), merge=False)
    for key, value in plain.state_dict().items():
        torch.testing.assert_close(value, weights[key], atol=2e-6, rtol=1e-5)
    torch.testing.assert_close(model(tokens).logits, unmerged, atol=1e-5, rtol=1e-5)


def test_dora_layer_gradcheck_in_float64():
    torch.manual_seed(0)
    layer = LoraLinear(torch.nn.Linear(5, 4).double())
    layer.add("a", AdapterSpec(r=2, scale=1.5, variant="dora"))
    layer.set_active(["a"])
    with torch.no_grad():
        layer.lora_B["a"].normal_()
        layer.variant_params["a"]["magnitude"].mul_(1.3)
    x = torch.randn(3, 5, dtype=torch.float64)
    A, B, m = layer.lora_A["a"], layer.lora_B["a"], layer.variant_params["a"]["magnitude"]

    def forward(A_, B_, m_):
        with torch.no_grad():
            A.copy_(A_), B.copy_(B_), m.copy_(m_)
        return layer(x)

    # the reference, written out in float64: the norm is a constant (detached), as in the paper and PEFT
    W, bias = layer.base_layer.weight, layer.base_layer.bias

    def reference(A_, B_, m_):
        norm = torch.linalg.vector_norm(W + 1.5 * B_.detach() @ A_.detach(), dim=1)
        return x @ ((m_ / norm)[:, None] * (W + 1.5 * B_ @ A_)).T + bias

    torch.testing.assert_close(forward(A.detach(), B.detach(), m.detach()), reference(A, B, m))
    inputs = tuple(t.detach().clone().requires_grad_(True) for t in (A, B, m))
    # gradcheck where the maths has no detached part: with respect to the magnitude and the input x
    x_ = x.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda m_, xx: _layer_call(layer, xx, A.detach(), B.detach(), m_), (inputs[2], x_))
    # with respect to A and B the norm is a constant: the gradients equal the written-out reference's
    out, ref = _layer_call(layer, x, *inputs), reference(*inputs)
    for got, want in zip(torch.autograd.grad(out.sum(), inputs), torch.autograd.grad(ref.sum(), inputs)):
        torch.testing.assert_close(got, want)


def _layer_call(layer, x, A, B, m):
    """The layer's forward as a function of (A, B, m), by swapping them in as the adapter's parameters."""
    saved = layer.lora_A["a"], layer.lora_B["a"], layer.variant_params["a"]["magnitude"]
    layer.lora_A._parameters["a"], layer.lora_B._parameters["a"] = A, B
    layer.variant_params["a"]._parameters["magnitude"] = m
    try:
        return layer(x)
    finally:
        layer.lora_A._parameters["a"], layer.lora_B._parameters["a"] = saved[0], saved[1]
        layer.variant_params["a"]._parameters["magnitude"] = saved[2]


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_merge_state_dict_equals_the_live_merge(kind, make_model, randomize, tmp_path):
    model = make_model(kind)
    base_state = {k: v.clone() for k, v in model.state_dict().items()}
    loralab.add_adapter(model, _dora(kind))
    randomize(model)
    loralab.save_adapter(model, tmp_path)
    merged = loralab.merge_state_dict(base_state, tmp_path)
    live = loralab.unload(model, merge=True).state_dict()
    changed = 0
    for key, value in live.items():
        torch.testing.assert_close(merged[key], value, atol=1e-6, rtol=1e-5)
        changed += not torch.equal(merged[key], base_state[key])
    assert changed >= 2


def test_dropout_in_training_matches_the_formula_and_eval_has_none(make_model, randomize, tokens):
    torch.manual_seed(0)
    layer = LoraLinear(torch.nn.Linear(6, 3))
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
    dropped = torch.nn.functional.dropout(x, 0.5, training=True)
    expected = x @ W.T + b + (g - 1) * (dropped @ W.T) + g * (dropped @ A.T @ B.T) * 2.0
    torch.testing.assert_close(out, expected)


def test_combine_refuses_dora_and_embeddings_are_refused(make_model):
    model = make_model("llama")
    loralab.add_adapter(model, _dora("llama"), "a")
    loralab.add_adapter(model, _dora("llama"), "b")
    with pytest.raises(ConfigError, match="cannot combine it exactly"):
        loralab.combine_adapters(model, ["a", "b"], method="cat")
    with pytest.raises(ConfigError, match="does not support Embedding"):
        loralab.add_adapter(make_model("llama"), loralab.LoraConfig(use_dora=True, target_modules=["embed_tokens"]))


def test_loraplus_gives_b_its_ratio_and_the_magnitude_the_base_lr(make_model):
    from loralab.train.optim import OptimizerConfig, parameter_groups

    model = loralab.add_adapter(make_model("llama"), _dora("llama"))
    groups = parameter_groups(model, OptimizerConfig(lr=1e-3, loraplus_ratio=16, weight_decay=0.1))
    magnitudes = {id(p) for n, p in model.named_parameters() if "magnitude" in n}
    bs = {id(p) for n, p in model.named_parameters() if "lora_B" in n}
    for group in groups:
        ids = {id(p) for p in group["params"]}
        if ids & magnitudes:
            assert ids <= magnitudes | {id(p) for n, p in model.named_parameters() if p.dim() < 2}
            assert group["lr"] == 1e-3 and group["weight_decay"] == 0.0
        if ids & bs:
            assert group["lr"] == pytest.approx(16e-3)
    assert magnitudes and all(any(i in {id(p) for p in g["params"]} for g in groups) for i in magnitudes)


def test_qlora_base_with_dora_trains_and_matches_its_dequantized_base(make_model, randomize, tokens):
    from loralab.quant import QuantConfig, dequantize_base, quantize_base

    model = quantize_base(make_model("llama"), QuantConfig(block_size=16, compute_dtype="float32"))
    loralab.add_adapter(model, _dora("llama"))
    randomize(model)
    ours = model(tokens).logits
    dense = dequantize_base(copy.deepcopy(model), dtype=torch.float32)
    torch.testing.assert_close(dense(tokens).logits, ours, atol=1e-4, rtol=1e-4)
