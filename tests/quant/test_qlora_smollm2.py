"""QLoRA on the bundled SmolLM2-135M: memory, per-layer error, agreement with the dense model, one step."""

import pytest
import torch
from torch import nn

import loralab
from loralab.quant import NF4Linear, quantize_base, weight_memory

pytestmark = pytest.mark.slow

PROMPT = "The capital of France is Paris. The capital of Germany is Berlin. The capital of Italy is"


def test_smollm2_in_4_bits():
    model, tokenizer = loralab.load_model("smollm2-135m-instruct")
    ids = tokenizer(PROMPT, return_tensors="pt").input_ids
    dense_weights = {name: m.weight.detach().clone() for name, m in model.named_modules() if isinstance(m, nn.Linear)}
    with torch.no_grad():
        dense = model(ids).logits
    quantize_base(model)

    memory = weight_memory(model)
    assert memory.quantized_params == 106_168_320  # 30 blocks × (3·576² + 2·576·192 + 3·576·1536); the head is tied
    assert memory.bits_per_quantized_param == pytest.approx(4.127, abs=1e-3)
    assert memory.quantized_vs_bf16 <= 0.30  # measured 0.258

    layers = {name: m for name, m in model.named_modules() if isinstance(m, NF4Linear)}
    assert len(layers) == 7 * 30 and isinstance(model.lm_head, nn.Linear)
    errors = [
        ((dense_weights[n] - m.dequantize(torch.float32)).norm() / dense_weights[n].norm()).item() for n, m in layers.items()
    ]
    assert 0.090 < min(errors) and max(errors) < 0.105  # measured 0.0922 – 0.1020 (0.0939 on average)

    with torch.no_grad():
        quantized = model(ids).logits
    # 30 layers of ~9% weight noise: measured next-token agreement 0.74 and mean KL 0.34 nats on this prompt
    assert (quantized.argmax(-1) == dense.argmax(-1)).float().mean() > 0.6

    loralab.add_adapter(model, loralab.LoraConfig(r=8))
    model.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(ids, labels=ids).loss
    loss.backward()
    with_grad = [n for n, p in model.named_parameters() if p.grad is not None]
    assert len(with_grad) == 2 * 7 * 30 and all(".lora_" in n for n in with_grad)
