"""Shipped recipes validate and run; bad recipes fail with the key named, before any model loads;
the quickstart runs end to end on a small budget."""

import json
import math
from pathlib import Path

import pytest
import torch
import yaml

from loralab.cli import main
from loralab.train.recipe import load_recipe

RECIPES = sorted((Path(__file__).parents[2] / "recipes").glob("*.yaml"))


def test_the_shipped_recipes_are_there():
    names = {p.stem for p in RECIPES}
    assert {"quickstart", "full-finetune", "rslora-r256", "continued-pretraining", "pycode"} <= names


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_every_shipped_recipe_validates_and_round_trips(path):
    recipe = load_recipe(path)
    assert recipe.name == path.stem
    again = yaml.safe_load(recipe.to_yaml())
    assert again["method"] == recipe.method
    # the saved form names only the sections its method uses, and reads back to the same recipe
    assert {"lora", "quant"} & set(again) == set(recipe.training_method.sections)
    if "lora" in again:
        assert again["lora"]["r"] == recipe.lora.r
    from loralab.train.recipe import recipe_from_dict

    assert recipe_from_dict(again) == recipe


def test_a_section_the_method_does_not_use_is_a_one_line_error(capsys, tmp_path):
    from loralab.errors import ConfigError
    from loralab.train.recipe import recipe_from_dict

    with pytest.raises(ConfigError, match=r"^recipe: lora, quant: not used by method full; remove them"):
        recipe_from_dict({"method": "full", "data": {"task": "arith"}, "lora": {"r": 4}, "quant": {}})
    with pytest.raises(ConfigError, match=r"quant: not used by method lora"):
        recipe_from_dict({"method": "lora", "data": {"task": "arith"}, "quant": {"block_size": 64}})
    assert recipe_from_dict({"method": "full", "data": {"task": "arith"}, "lora": None}).method == "full"
    # from the command line: one line, no stack trace
    args = ["train", str(RECIPES[0].parent / "quickstart.yaml"), f"output_dir={tmp_path}", "method=full"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "lora: not used by method full" in err and "Traceback" not in err


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_every_shipped_recipe_trains_a_step_on_a_tiny_model(path, tmp_path):
    overrides = ["model.name=tiny-llama", "train.max_steps=1", "train.micro_batch_size=2", "train.grad_accum=1",
                 "eval.tasks=[]", f"output_dir={tmp_path}", "data.examples=8", "--no-progress"]  # fmt: skip
    assert main(["train", str(path), *overrides]) == 0
    run_dir = tmp_path / path.stem
    assert (run_dir / "recipe.yaml").is_file() and (run_dir / "report.md").is_file()
    assert (run_dir / ("model" if load_recipe(path).method == "full" else "adapter")).is_dir()


@pytest.fixture
def no_model_loads(monkeypatch):
    import loralab.models

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the recipe was validated")

    monkeypatch.setattr(loralab.models, "load_model", refuse)


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.lerning_rate=1", "train.lerning_rate: unknown setting"),
        ("optimizer.lr=fast", "optimizer.lr: expected a number"),
        ("train.max_steps=ten", "train.max_steps: expected a whole number"),
        ("lora.r=0", "must be an integer ≥ 1, got 0"),
        ("data.path=missing.jsonl", "data.path: data file 'missing.jsonl' not found"),
        ("method=dora", "method: expected one of"),
        ("eval.tasks=[arithmetic]", "arithmetic"),
        ("trian.max_steps=3", "trian: unknown section"),
    ],
)
def test_bad_recipes_fail_clearly_before_any_model_loads(override, message, no_model_loads, capsys, tmp_path):
    args = ["train", str(RECIPES[0].parent / "quickstart.yaml"), f"output_dir={tmp_path}", override]
    if override.startswith("data.path"):
        args.append("data.task=null")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("loralab: error:") and message in err and "Traceback" not in err


def test_a_recipe_file_that_is_missing_or_not_yaml(tmp_path, capsys):
    assert main(["train", str(tmp_path / "nope.yaml")]) == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    assert main(["train", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "not found" in err and "not valid YAML" in err


@pytest.mark.slow
def test_the_quickstart_on_a_small_budget_runs_end_to_end(tmp_path, capsys):
    overrides = ["train.max_steps=2", "train.micro_batch_size=2", "data.examples=8", "eval.limit=2",
                 "eval.settings.max_new_tokens=16", f"output_dir={tmp_path}", "--no-progress"]  # fmt: skip
    assert main(["train", "recipes/quickstart.yaml", *overrides]) == 0
    run_dir = tmp_path / "quickstart"
    before = json.loads((run_dir / "eval" / "before.json").read_text())
    final = json.loads((run_dir / "eval" / "final.json").read_text())
    assert {r["task"] for r in final} == {"arith", "source-ppl", "source-kl"}
    assert next(r for r in before if r["task"] == "source-kl")["value"] == pytest.approx(0.0, abs=1e-6)
    assert next(r for r in final if r["task"] == "source-kl")["value"] > 0  # the adapter changed the model
    report = (run_dir / "report.md").read_text()
    assert "LEARNED" in report and "FORGOTTEN" in report
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 2


@pytest.mark.slow
def test_the_dora_variant_of_the_quickstart_trains_on_smollm2(tmp_path):
    """``lora.use_dora=true``: the magnitude vectors are saved in PEFT's layout and have moved from ‖W‖."""
    from safetensors.torch import load_file

    from loralab.models import load_model

    overrides = ["lora.use_dora=true", "train.max_steps=3", "train.micro_batch_size=2", "data.examples=8",
                 "eval.tasks=[]", "optimizer.lr=1e-2", f"output_dir={tmp_path}", "name=dora", "--no-progress"]  # fmt: skip
    assert main(["train", "recipes/quickstart.yaml", *overrides]) == 0
    run_dir = tmp_path / "dora"
    config = json.loads((run_dir / "adapter" / "adapter_config.json").read_text())
    assert config["use_dora"] is True
    tensors = load_file(str(run_dir / "adapter" / "adapter_model.safetensors"))
    magnitudes = {k: v for k, v in tensors.items() if "lora_magnitude_vector" in k}
    assert len(magnitudes) == sum("lora_A" in k for k in tensors) > 0
    base, _ = load_model("smollm2-135m-instruct")
    key = next(k for k in magnitudes if "q_proj" in k)
    path = key.removeprefix("base_model.model.").split(".lora_magnitude_vector")[0]
    norm = base.get_submodule(path).weight.detach().norm(dim=1)  # ‖W‖ per output row, the magnitude's start
    assert magnitudes[key].shape == norm.shape and not torch.allclose(magnitudes[key], norm)
    losses = [json.loads(line)["loss"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert len(losses) == 3 and all(math.isfinite(x) for x in losses)
