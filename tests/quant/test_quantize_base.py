"""quantize_base / dequantize_base on tiny Llamas: which layers, biases, memory, adapters, bad inputs."""

import pytest
import torch
from torch import nn

import loralab
from loralab.errors import ConfigError, LoraLabError
from loralab.quant import NF4Linear, QuantConfig, dequantize_base, quantize_base, weight_memory

PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def _kinds(model, cls):
    return sorted(name for name, m in model.named_modules() if isinstance(m, cls))


def test_every_linear_but_the_head_becomes_nf4(make_model, tokens):
    model = make_model()
    with torch.no_grad():
        dense = model(tokens).logits
    assert quantize_base(model) is model
    assert _kinds(model, NF4Linear) == sorted(f"model.layers.{i}.{part}.{p}" for i in (0, 1) for p in PROJECTIONS
                                              for part in ["self_attn" if p in PROJECTIONS[:4] else "mlp"])  # fmt: skip
    assert _kinds(model, nn.Linear) == ["lm_head"] and isinstance(model.model.embed_tokens, nn.Embedding)
    with torch.no_grad():
        quantized = model(tokens).logits
    # the 4-bit base computes nearly the same (measured relative error of the logits: 0.060)
    assert ((quantized - dense).norm() / dense.norm()).item() < 0.15


def test_head_and_skipped_modules(make_model):
    model = quantize_base(make_model(), QuantConfig(quantize_head=True, skip_modules=["down_proj"]))
    assert "lm_head" in _kinds(model, NF4Linear)
    assert _kinds(model, nn.Linear) == ["model.layers.0.mlp.down_proj", "model.layers.1.mlp.down_proj"]
    model = quantize_base(make_model(), QuantConfig(skip_modules=r"model\.layers\.1\..*"))
    assert len(_kinds(model, NF4Linear)) == 7


def test_biases_are_kept_in_full_precision_and_frozen(make_model, tokens):
    model = make_model(attention_bias=True)
    biases = {name: p.detach().clone() for name, p in model.named_parameters() if name.endswith("proj.bias")}
    quantize_base(model, QuantConfig(compute_dtype="float32"))
    after = dict(model.named_parameters())
    assert all(torch.equal(after[name], value) and not after[name].requires_grad for name, value in biases.items())
    layer = model.model.layers[0].self_attn.q_proj
    x = torch.randn(2, 32)
    assert torch.equal(layer(x), x @ layer.dequantize(torch.float32).T + layer.bias)


def test_parameter_count_and_weight_memory(make_model):
    model = make_model()
    total = loralab.trainable_parameters(model, verbose=False).total
    quantize_base(model)
    assert loralab.trainable_parameters(model, verbose=False).total == total  # 4-bit weights still count
    memory = weight_memory(model)
    nf4 = 2 * (2 * 32 * 32 + 2 * 16 * 32 + 3 * 64 * 32)
    dense = 2 * 128 * 32 + 5 * 32  # embeddings, head, norms
    assert (memory.quantized_params, memory.dense_params, memory.dense_bytes) == (nf4, dense, 4 * dense)
    # per layer: n/2 codes + n/64 int8 scales + one fp32 per 256 scales (1 here) + the fp32 mean
    assert memory.quantized_bytes == sum(n // 2 + n // 64 + 4 + 4 for n in [1024, 512, 512, 1024, 2048, 2048, 2048] * 2)


def test_bits_per_weight_of_a_wider_model_approach_4_127(make_model):
    model = quantize_base(make_model(hidden_size=256, intermediate_size=1024, num_attention_heads=4, num_key_value_heads=4))
    memory = weight_memory(model)
    assert memory.bits_per_quantized_param == pytest.approx(4 + 8 / 64 + 32 / (64 * 256), abs=1e-3)
    assert memory.quantized_vs_bf16 == pytest.approx(0.258, abs=1e-3)
    assert "bits/param" in str(memory)


def test_quantizing_a_model_with_adapters_keeps_them(make_model, tokens, randomize):
    """Adapters added before or after quantize_base give the same model."""
    config = loralab.LoraConfig(r=4)
    before = loralab.add_adapter(make_model(), config)
    randomize(before)
    params = dict(before.named_parameters())
    quantize_base(before)
    assert all(p is params[n] for n, p in before.named_parameters())
    assert {n for n, p in before.named_parameters() if p.requires_grad} == {n for n in params if "lora_" in n}
    after = loralab.add_adapter(quantize_base(make_model()), config)
    after.load_state_dict(before.state_dict())
    with torch.no_grad():
        assert torch.equal(before(tokens).logits, after(tokens).logits)
    assert before.model.layers[0].self_attn.q_proj.lora_A["default"].dtype == torch.float32


def test_dequantize_base_restores_dense_layers_holding_the_4bit_weight(make_model, tokens):
    model = quantize_base(make_model(), QuantConfig(compute_dtype="float32"))
    expected = {name: m.dequantize(torch.float32) for name, m in model.named_modules() if isinstance(m, NF4Linear)}
    with torch.no_grad():
        quantized = model(tokens).logits
    assert dequantize_base(model) is model
    assert _kinds(model, NF4Linear) == []
    for name, weight in expected.items():
        layer = model.get_submodule(name)
        assert type(layer) is nn.Linear and torch.equal(layer.weight, weight) and not layer.weight.requires_grad
    with torch.no_grad():
        assert torch.equal(model(tokens).logits, quantized)


def test_dequantize_base_to_another_dtype(make_model):
    model = dequantize_base(quantize_base(make_model(attention_bias=True)), dtype=torch.bfloat16)
    q_proj = model.model.layers[0].self_attn.q_proj
    assert q_proj.weight.dtype == torch.bfloat16 and q_proj.bias.dtype == torch.bfloat16


# -- bad inputs ------------------------------------------------------------------------------------
def test_a_model_without_linear_layers(make_model):
    with pytest.raises(LoraLabError, match="found no nn.Linear layer to quantize in this GPT2LMHeadModel .*Conv1D"):
        quantize_base(make_model("gpt2"))
    with pytest.raises(LoraLabError, match="found no nn.Linear layer .*it already has 14 NF4Linear layers"):
        quantize_base(quantize_base(make_model()))
    with pytest.raises(LoraLabError, match="found no nn.Linear layer"):
        quantize_base(nn.Sequential(nn.Embedding(4, 4), nn.LayerNorm(4)))


def test_a_block_size_not_dividing_a_weight_leaves_the_model_unchanged(make_model):
    model = make_model()
    with pytest.raises(ConfigError, match=r"block_size=48 does not divide the 1024 elements of model\.layers\.0\.self_attn\.q_proj\.weight \(32, 32\)"):
        quantize_base(model, QuantConfig(block_size=48))
    assert _kinds(model, NF4Linear) == []


def test_other_bad_inputs(make_model):
    model = make_model()
    with torch.no_grad():
        model.model.layers[1].mlp.up_proj.weight[0, 0] = float("nan")
    with pytest.raises(LoraLabError, match=r"model\.layers\.1\.mlp\.up_proj\.weight is not a finite"):
        quantize_base(model)
    assert _kinds(model, NF4Linear) == []
    with pytest.raises(ConfigError, match="expected a loralab.quant.QuantConfig, got dict"):
        quantize_base(make_model(), {"block_size": 64})
    merged = loralab.add_adapter(make_model(), loralab.LoraConfig(r=2))
    loralab.merge(merged)
    with pytest.raises(LoraLabError, match=r"adapter\(s\) \['default'\] are merged into model\.layers\.0\.self_attn\.q_proj; unmerge"):
        quantize_base(merged)
    with pytest.raises(LoraLabError, match="dequantize_base found no NF4Linear layer"):
        dequantize_base(make_model())


def test_a_plain_pytorch_model():
    """Any nn.Module works; nn.MultiheadAttention's out_proj (whose weight MHA reads itself) is left alone."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 8))
    model.attn = nn.MultiheadAttention(8, 2)
    x = torch.randn(4, 16)
    with torch.no_grad():
        dense = model[2](model[1](model[0](x)))
    quantize_base(model, QuantConfig(compute_dtype="float32"))
    assert _kinds(model, NF4Linear) == ["0", "2"] and type(model.attn.out_proj) is not NF4Linear
    with torch.no_grad():
        assert ((model[2](model[1](model[0](x))) - dense).norm() / dense.norm()) < 0.2
