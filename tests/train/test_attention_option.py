"""``model.attention`` in a recipe: validated, written to the run's recipe, and the model trains with that kernel."""

import json

import pytest
import yaml

from loralab.errors import ConfigError
from loralab.train.trainer import train


def test_a_recipe_trains_with_eager_attention_as_with_sdpa(make_recipe, monkeypatch):
    import loralab.train.methods.base as methods_base

    used, real = [], methods_base.set_attention
    monkeypatch.setattr(methods_base, "set_attention", lambda model, name: real(model, name) or used.append(model.config._attn_implementation))
    losses = {}
    for attention in ("sdpa", "eager"):
        run = train(make_recipe(f"name={attention}", "train.max_steps=3", f"model.attention={attention}"), progress=False)
        losses[attention] = [json.loads(line)["loss"] for line in (run.run_dir / "metrics.jsonl").read_text().splitlines()]
        assert yaml.safe_load((run.run_dir / "recipe.yaml").read_text())["model"]["attention"] == attention
    assert used == ["sdpa", "eager"]
    assert losses["eager"] == pytest.approx(losses["sdpa"], rel=1e-4)


def test_a_bad_attention_in_a_recipe_is_refused(make_recipe):
    with pytest.raises(ConfigError, match="attention must be one of"):
        make_recipe("model.attention=flash")
