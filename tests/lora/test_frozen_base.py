"""Frozen base weights held in bf16 under bf16 autocast: the same forward and gradients, fewer bytes."""

import copy

import torch

from loralab import LoraConfig, add_adapter
from loralab.lora.frozen_base import hold_frozen_base_in


def _outputs(model, tokens):
    torch.manual_seed(0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(input_ids=tokens, labels=tokens)
    out.loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    model.zero_grad(set_to_none=True)
    return out.logits.detach(), grads


def test_same_forward_and_gradients_bit_for_bit(make_model, randomize, tokens):
    model = make_model("llama")
    add_adapter(model, LoraConfig(r=4, alpha=8, dropout=0.1, target_modules=["q_proj", "v_proj", "down_proj", "lm_head"]))
    randomize(model)
    model.train()
    held = copy.deepcopy(model)
    saved = hold_frozen_base_in(held, torch.bfloat16)
    # q, v (32×32, 16×32), down (32×64) per layer and the untied head (128×32): half their float32 bytes
    assert saved == (2 * (32 * 32 + 16 * 32 + 32 * 64) + 128 * 32) * 2
    assert held.model.layers[0].self_attn.q_proj.base_layer.weight.dtype == torch.bfloat16
    assert held.model.layers[0].self_attn.k_proj.weight.dtype == torch.float32  # not under an adapter
    want_logits, want = _outputs(model, tokens)
    got_logits, got = _outputs(held, tokens)
    assert torch.equal(got_logits, want_logits)
    assert want.keys() == got.keys()
    for name in want:
        assert torch.equal(got[name], want[name]), name
    assert hold_frozen_base_in(held, torch.bfloat16) == 0  # idempotent


def test_what_is_left_alone(make_model):
    model = make_model("llama", tie_word_embeddings=True)
    add_adapter(model, LoraConfig(r=4, target_modules=["q_proj", "lm_head"]))
    add_adapter(model, LoraConfig(r=4, target_modules=["v_proj"], use_dora=True), "dora")
    model.model.layers[1].self_attn.q_proj.base_layer.weight.requires_grad_(True)
    hold_frozen_base_in(model, torch.bfloat16)
    layers = model.model.layers
    assert layers[0].self_attn.q_proj.base_layer.weight.dtype == torch.bfloat16
    assert layers[1].self_attn.q_proj.base_layer.weight.dtype == torch.float32  # trains
    assert layers[0].self_attn.v_proj.base_layer.weight.dtype == torch.float32  # DoRA reads W's norms
    assert model.lm_head.base_layer.weight.dtype == torch.float32  # tied to the embedding
