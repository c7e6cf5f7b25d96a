"""Gradient checkpointing changes memory, not results; dropout in the model acts only in training."""

import json

import pytest
import torch

from loralab.models import load_model
from loralab.train.model_setup import add_output_dropout
from loralab.train.trainer import train


@pytest.mark.parametrize("dropout", [("lora.dropout=0.0",), ("lora.dropout=0.2",), ("lora.dropout=0.2", "lora.use_dora=true")])
def test_gradient_checkpointing_gives_the_same_losses(make_recipe, dropout):
    """Recomputed layers draw the same dropout masks (plain LoRA's and DoRA's fused layers included)."""
    plain = train(make_recipe("name=plain", "train.max_steps=3", *dropout), progress=False)
    checkpointed = train(make_recipe("name=ckpt", "train.max_steps=3", "train.gradient_checkpointing=true", *dropout), progress=False)
    losses = [[json.loads(l)["loss"] for l in (r.run_dir / "metrics.jsonl").read_text().splitlines()] for r in (plain, checkpointed)]
    assert losses[1] == pytest.approx(losses[0], rel=1e-6)
    from loralab.train.model_setup import base_model, make_trainable

    recipe = make_recipe("train.gradient_checkpointing=true")
    model = make_trainable(base_model(recipe)[0], recipe)
    assert any(getattr(m, "gradient_checkpointing", False) for m in model.modules())  # it is really on


def test_model_dropout_acts_on_every_sublayer_in_training_only():
    model, _ = load_model("tiny-llama")
    ids = torch.tensor([[1, 2, 3, 4, 5, 6]])
    with torch.no_grad():
        clean = model(input_ids=ids).logits
        assert add_output_dropout(model, 0.5) == 2 * model.config.num_hidden_layers  # attention + MLP per block
        model.eval()
        assert torch.equal(model(input_ids=ids).logits, clean)
        model.train()
        first, second = model(input_ids=ids).logits, model(input_ids=ids).logits
    assert not torch.allclose(first, clean) and not torch.allclose(first, second)
