"""DoRA on a 4-bit base: the norm is taken of the dequantized weight Ŵ; it trains, saves and loads like plain QLoRA."""

import copy

import pytest
import torch

import loralab
from loralab.errors import LoraLabError
from loralab.lora.layers import LoraLinear
from loralab.quant import NF4Linear, QuantConfig, dequantize_base, quantize_base

CONFIG = QuantConfig(block_size=16, compute_dtype="float32")


def _dora_on_nf4(make_model, randomize):
    model = quantize_base(make_model("llama"), CONFIG)
    loralab.add_adapter(model, loralab.LoraConfig(r=4, alpha=8, use_dora=True, target_modules=["q_proj", "up_proj"]))
    return randomize(model)


def test_the_nf4_dora_layer_computes_dora_of_the_dequantized_weight(make_model, randomize):
    layer = next(m for m in _dora_on_nf4(make_model, randomize).modules() if isinstance(m, LoraLinear))
    assert isinstance(layer.base_layer, NF4Linear)
    x = torch.randn(3, layer.base_layer.in_features)
    W, bias = layer.base_layer.dequantize(torch.float32), layer.base_layer.bias
    A, B, m, s = layer.lora_A["default"], layer.lora_B["default"], layer.variant_params["default"]["magnitude"], layer.specs["default"].scale
    W_dora = (m / torch.linalg.vector_norm(W + s * B @ A, dim=1))[:, None] * (W + s * B @ A)
    expected = x @ W_dora.T + (bias if bias is not None else 0)
    torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(layer(x), layer.base_layer(x), atol=1e-3)


def test_dora_on_nf4_equals_dora_on_the_dequantized_base_and_trains(make_model, randomize, tokens, tmp_path):
    model = _dora_on_nf4(make_model, randomize)
    ours = model(tokens).logits
    dense = dequantize_base(copy.deepcopy(model), dtype=torch.float32)
    torch.testing.assert_close(dense(tokens).logits, ours, atol=1e-5, rtol=1e-5)
    ours.sum().backward()
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert any("magnitude" in n for n in trainable)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in trainable.values())
    loralab.save_adapter(model, tmp_path)  # loads on a freshly quantized base: the same outputs
    again = quantize_base(make_model("llama"), CONFIG)
    loralab.load_adapter(again, tmp_path)
    torch.testing.assert_close(again(tokens).logits, ours.detach())


def test_merging_dora_into_a_4bit_base_is_a_clear_error(make_model, randomize):
    model = _dora_on_nf4(make_model, randomize)
    with pytest.raises(LoraLabError, match="dequantize_base"):
        loralab.merge(model)
