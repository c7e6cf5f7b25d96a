"""Tiny random models: build, run, deterministic per seed."""

import pytest
import torch
from transformers.pytorch_utils import Conv1D

from loralab.errors import ModelLoadError
from loralab.models import TINY_KINDS, tiny_model


@pytest.mark.parametrize("kind", TINY_KINDS)
def test_tiny_model_runs_forward_in_fp32_eval_mode(kind):
    model = tiny_model(kind, vocab_size=50)
    ids = torch.randint(0, 50, (2, 7))
    logits = model(ids).logits
    assert logits.shape == (2, 7, 50)
    assert torch.isfinite(logits).all()
    assert not model.training
    assert {p.dtype for p in model.parameters()} == {torch.float32}


@pytest.mark.parametrize("kind", TINY_KINDS)
def test_same_seed_same_weights_other_seed_other_weights(kind):
    ids = torch.randint(0, 128, (1, 5))
    first, again, other = tiny_model(kind, seed=1), tiny_model(kind, seed=1), tiny_model(kind, seed=2)
    assert torch.equal(first(ids).logits, again(ids).logits)
    assert not torch.allclose(first(ids).logits, other(ids).logits)


def test_global_random_state_is_left_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    tiny_model("llama", seed=9)
    assert torch.equal(torch.rand(3), expected)


def test_llama_shape_and_untied_head():
    model = tiny_model("llama")
    config = model.config
    assert (config.hidden_size, config.intermediate_size, config.num_hidden_layers) == (32, 64, 2)
    assert (config.num_attention_heads, config.num_key_value_heads) == (4, 2)
    assert model.lm_head.weight.data_ptr() != model.model.embed_tokens.weight.data_ptr()
    assert isinstance(model.model.layers[0].self_attn.q_proj, torch.nn.Linear)


def test_gpt2_uses_conv1d_layers():
    model = tiny_model("gpt2")
    assert (model.config.n_embd, model.config.n_layer, model.config.n_head, model.config.n_positions) == (32, 2, 4, 128)
    assert isinstance(model.transformer.h[0].attn.c_attn, Conv1D)
    assert model.config.eos_token_id < model.config.vocab_size


def test_overrides_reach_the_config():
    assert tiny_model("llama", num_hidden_layers=1).config.num_hidden_layers == 1
    assert len(tiny_model("gpt2", n_layer=3).transformer.h) == 3


def test_unknown_kind_is_a_clear_error():
    with pytest.raises(ModelLoadError, match="llama, gpt2"):
        tiny_model("bert")
