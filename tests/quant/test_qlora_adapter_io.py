"""An adapter trained on the 4-bit base: saved in PEFT's format, loaded on the 4-bit base and on the dense one."""

import json

import torch
from safetensors.torch import load_file

import loralab
from loralab.quant import quantize_base


def _trained(make_model, randomize):
    model = loralab.add_adapter(quantize_base(make_model()), loralab.LoraConfig(r=4, alpha=8))
    return randomize(model, std=0.5)


def test_the_saved_adapter_is_plain_peft(make_model, randomize, tmp_path):
    loralab.save_adapter(_trained(make_model, randomize), tmp_path)
    tensors = load_file(tmp_path / "adapter_model.safetensors")
    assert len(tensors) == 2 * 14 and all(t.dtype == torch.float32 for t in tensors.values())
    assert tensors["base_model.model.model.layers.0.self_attn.k_proj.lora_B.weight"].shape == (16, 4)
    config = json.loads((tmp_path / "adapter_config.json").read_text())
    assert config["r"] == 4 and sorted(config["target_modules"])[0] == "down_proj"


def test_loads_on_the_base_quantized_again_with_identical_outputs(make_model, randomize, tokens, tmp_path):
    model = _trained(make_model, randomize)
    loralab.save_adapter(model, tmp_path)
    again = quantize_base(make_model())
    loralab.load_adapter(again, tmp_path)
    with torch.no_grad():
        assert torch.equal(again(tokens).logits, model(tokens).logits)  # quantization is deterministic


def test_loads_on_the_dense_base(make_model, randomize, tokens, tmp_path):
    """On the unquantized base the adapter's factors are the same and the outputs differ only by the
    base's quantization error (measured max |Δlogit| 0.018 with the adapter, 0.033 without; logits ≈ ±0.4)."""
    model = _trained(make_model, randomize)
    loralab.save_adapter(model, tmp_path)
    dense = make_model()
    loralab.load_adapter(dense, tmp_path)
    factors = {n: p for n, p in model.named_parameters() if ".lora_" in n}
    assert factors.keys() == {n for n, _ in dense.named_parameters() if ".lora_" in n}
    assert all(torch.equal(p, dense.get_parameter(n)) for n, p in factors.items())
    with torch.no_grad():
        qlora, on_dense = model(tokens).logits, dense(tokens).logits
        with loralab.disabled(model), loralab.disabled(dense):
            quantized_base, dense_base = model(tokens).logits, dense(tokens).logits
    assert (on_dense - dense_base).abs().max() > 0.2  # the adapter moves the logits (by 0.5 here) ...
    assert (qlora - on_dense).abs().max() < 0.06  # ... the same way on both bases (measured 0.018)
    assert (quantized_base - dense_base).abs().max() < 0.06  # the bases' own gap (measured 0.033)


def test_an_adapter_for_another_shape_is_a_clear_mismatch_on_a_quantized_base(make_model, randomize, tmp_path):
    from loralab.errors import AdapterMismatchError

    loralab.save_adapter(_trained(make_model, randomize), tmp_path)
    wider = quantize_base(make_model(hidden_size=64, intermediate_size=128))
    import pytest

    with pytest.raises(AdapterMismatchError, match="d_in, d_out"):
        loralab.load_adapter(wider, tmp_path)


def test_merge_refuses_a_partly_quantized_model_before_changing_any_layer(make_model, randomize, tokens):
    """With some layers left dense (skip_modules), merge must not merge those and then stop at an NF4 one."""
    import pytest

    from loralab.errors import LoraLabError
    from loralab.quant import QuantConfig

    model = loralab.add_adapter(quantize_base(make_model(), QuantConfig(skip_modules=["q_proj"])), loralab.LoraConfig(r=4))
    randomize(model, std=0.5)
    with torch.no_grad():
        before = model(tokens).logits
    with pytest.raises(LoraLabError, match="dequantize_base"):
        loralab.merge(model)
    from loralab.lora.interface import adapter_modules

    assert all(not layer.merged for _, layer in adapter_modules(model))
    with torch.no_grad():
        assert torch.equal(model(tokens).logits, before)
