"""Hostile or careless recipes: non-finite and absurd numbers, ranks wider than the model's layers,
warmup longer than the run, ``eval.limit: 0``, a recipe that is not UTF-8. Each is refused (or
warned about) when the recipe is read, with one line naming the key, before any model loads."""

from pathlib import Path

import pytest

from loralab.cli import main
from loralab.errors import ConfigError
from loralab.lora.config import LoraConfig
from loralab.train.optim import OptimizerConfig
from loralab.train.recipe import TrainConfig, load_recipe

QUICKSTART = Path(__file__).parents[2] / "recipes" / "quickstart.yaml"
HUGE = "1" + "0" * 400  # a YAML integer beyond float's range


@pytest.mark.parametrize(
    "override, message",
    [
        ("optimizer.lr=inf", "optimizer.lr: must be a finite number in (0, 10], got inf"),
        ("optimizer.lr=.inf", "optimizer.lr: must be a finite number in (0, 10], got inf"),
        ("optimizer.lr=1e30", "optimizer.lr: must be a finite number in (0, 10], got 1e+30"),
        ("optimizer.lr=.nan", "optimizer.lr: must be a finite number in (0, 10], got nan"),
        (f"optimizer.lr={HUGE}", "optimizer.lr: must be a finite number in (0, 10], got inf"),
        ("optimizer.weight_decay=inf", "optimizer.weight_decay: must be a finite number in [0, 10], got inf"),
        ("optimizer.loraplus_ratio=inf", "optimizer.loraplus_ratio: must be a finite number in (0, 1000], got inf"),
        ("optimizer.eps=inf", "optimizer.eps: must be a finite number in (0, 1], got inf"),
        ("optimizer.momentum=.nan", "optimizer.momentum: must be a finite number in [0, 1), got nan"),
        ("optimizer.betas=[.nan,0.999]", "optimizer.betas[0]: must be a finite number in [0, 1), got nan"),
        ("optimizer.betas=[0.9,1.0]", "optimizer.betas[1]: must be a finite number in [0, 1), got 1.0"),
        ("train.max_grad_norm=.nan", "train.max_grad_norm: must be a finite number ≥ 0, got nan; 0 turns clipping off"),
        ("train.max_grad_norm=inf", "train.max_grad_norm: must be a finite number ≥ 0, got inf; 0 turns clipping off"),
        ("train.epochs=inf", "train.epochs: must be a finite number in (0, 10000], got inf"),
        ("train.epochs=1e9", "train.epochs: must be a finite number in (0, 10000], got 1000000000.0"),
        ("train.min_lr_ratio=.nan", "train.min_lr_ratio: must be a finite number in [0, 1], got nan"),
        ("train.checkpoint_minutes=inf", "train.checkpoint_minutes: must be a finite number ≥ 0, got inf; 0 turns it off"),
        ("train.checkpoint_minutes=.nan", "train.checkpoint_minutes: must be a finite number ≥ 0, got nan"),
        ("train.seed=18446744073709551616", "train.seed: must be a whole number in [0, 2**32), got 18446744073709551616"),
        ("train.seed=-1", "train.seed: must be a whole number in [0, 2**32), got -1"),
        ("eval.seed=99999999999999999999", "eval.seed: must be a whole number in [0, 2**32)"),
        ("model.dropout=.nan", "model.dropout: must be a finite number in [0, 1), got nan"),
        ("lora.alpha=inf", "lora.alpha: must be a finite number, got inf"),
        ("lora.alpha_pattern={q_proj: .inf}", "lora.alpha_pattern['q_proj']: must be a finite number, got inf"),
        ("lora.dropout=.nan", "lora.dropout: must be a finite number, got nan"),
        ("eval.limit=0", "eval.limit: must be a whole number ≥ 1, got 0; for no evaluation give eval.tasks: []"),
        ("eval.limit=-5", "eval.limit: must be a whole number ≥ 1, got -5; for no evaluation give eval.tasks: []"),
        ("eval.settings.temperature=.nan", "eval.settings.temperature: must be a finite number, got nan"),
        ("eval.settings.top_p=.nan", "eval.settings.top_p: must be a finite number, got nan"),
        ("eval.settings.timeout=inf", "eval.settings.timeout: must be a finite number, got inf"),
        ("eval.settings.top_p=2", "eval.settings.top_p must be in (0, 1], got 2.0"),
    ],
)
def test_non_finite_and_absurd_numbers_are_refused_naming_the_key(override, message):
    with pytest.raises(ConfigError) as caught:
        load_recipe(QUICKSTART, [override])
    assert str(caught.value).startswith(f"{QUICKSTART}: {message}") and "\n" not in str(caught.value)


@pytest.fixture
def no_model_loads(monkeypatch):
    import loralab.models

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the recipe was validated")

    monkeypatch.setattr(loralab.models, "load_model", refuse)


@pytest.mark.parametrize("override", ["optimizer.lr=inf", "train.max_grad_norm=nan", "eval.limit=0", "train.checkpoint_minutes=inf"])
def test_the_cli_prints_one_line_and_loads_no_model(override, no_model_loads, capsys, tmp_path):
    assert main(["train", str(QUICKSTART), f"output_dir={tmp_path}", override]) == 2
    err = capsys.readouterr().err
    assert err.startswith("loralab: error:") and err.strip().count("\n") == 0 and "Traceback" not in err
    assert override.split("=")[0] + ":" in err


def test_sections_built_in_python_are_checked_the_same_way():
    with pytest.raises(ConfigError, match=r"^lr: must be a finite number in \(0, 10\], got inf$"):
        OptimizerConfig(lr=float("inf"))
    with pytest.raises(ConfigError, match=r"^checkpoint_minutes: must be a finite number ≥ 0, got nan"):
        TrainConfig(checkpoint_minutes=float("nan"))
    with pytest.raises(ConfigError, match=r"^seed: must be a whole number in \[0, 2\*\*32\), got 4294967296$"):
        TrainConfig(seed=2**32)
    with pytest.raises(ConfigError, match=r"alpha \(the LoRA alpha\) must be a finite number > 0, got inf"):
        LoraConfig(alpha=float("inf"))
    assert OptimizerConfig(lr="2e-4", betas=[0.8, 0.9]) == OptimizerConfig(lr=2e-4, betas=(0.8, 0.9))
    assert TrainConfig(epochs=2, seed=2**32 - 1).epochs == 2.0


def test_a_recipe_that_is_not_utf8_is_one_line_naming_the_file_and_byte(tmp_path, capsys):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: run\ndata: {task: arith}\n# café\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin1\.yaml: not UTF-8 text \(byte 35, line 3: 0xe9\); save the recipe as UTF-8$"):
        load_recipe(path)
    assert main(["train", str(path)]) == 2
    err = capsys.readouterr().err
    assert "latin1.yaml: not UTF-8 text (byte 35" in err and err.strip().count("\n") == 0 and "Traceback" not in err


def test_a_recipe_nested_beyond_the_stack_is_one_line(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text("data: " + "[" * 100_000)
    with pytest.raises(ConfigError, match=r"deep\.yaml: nested too deeply to read"):
        load_recipe(path)


# -- what check_environment (called by train before the model loads) refuses or warns about -----------


def test_warmup_longer_than_the_run_is_warned_about(make_recipe, capsys):
    make_recipe("train.max_steps=4", "train.warmup_steps=10").check_environment()
    assert "warning: train.warmup_steps (10) is more than train.max_steps (4)" in capsys.readouterr().out
    make_recipe("train.max_steps=4", "train.warmup_steps=4").check_environment()
    assert "warmup_steps" not in capsys.readouterr().out


@pytest.fixture
def config_only_model(tmp_path):
    """A model folder holding only config.json (no weights): a Llama of width 32, k/v 16, MLP 64."""
    from transformers import LlamaConfig

    folder = tmp_path / "shapes-only"
    LlamaConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2).save_pretrained(folder)  # fmt: skip
    assert sorted(p.name for p in folder.iterdir()) == ["config.json"]
    return str(folder)


def test_a_rank_above_every_targeted_layer_is_refused_from_the_config_alone(make_recipe, config_only_model):
    recipe = make_recipe(f"model.name={config_only_model}", "lora.r=40", "lora.target_modules=[q_proj, v_proj]")
    with pytest.raises(ConfigError, match=r"^lora\.r: rank 40 is above min\(in, out\) of every layer it targets in .*"
                                          r"\(q_proj 32, v_proj 16\), where it adds parameters but not rank; use r ≤ 32$"):  # fmt: skip
        recipe.check_environment()


def test_a_rank_above_some_targeted_layers_is_a_warning(make_recipe, config_only_model, capsys):
    make_recipe(f"model.name={config_only_model}", "lora.r=20", "lora.target_modules=[q_proj, v_proj]").check_environment()
    out = capsys.readouterr().out
    assert "warning: lora.r: rank 20 is above min(in, out) of 2 of the 4 layers it targets" in out and "(v_proj 16)" in out
    make_recipe(f"model.name={config_only_model}", "lora.r=4", "lora.rank_pattern={down_proj: 48}").check_environment()
    assert "warning: lora.rank_pattern: rank 48 is above min(in, out) of 2 of the 7 layers" in capsys.readouterr().out
    make_recipe(f"model.name={config_only_model}", "lora.r=16").check_environment()
    assert capsys.readouterr().out == ""


def test_tiny_test_models_only_warn(make_recipe, capsys):
    """A tiny random model stands in for a real one to try any shipped recipe (rslora-r256 has r=256)."""
    make_recipe("lora.r=256").check_environment()
    assert "warning: lora.r: rank 256 is above min(in, out) of every layer it targets in tiny-llama" in capsys.readouterr().out


def test_train_refuses_a_rank_before_loading_the_model(make_recipe, config_only_model, no_model_loads, tmp_path, capsys):
    from loralab.train.trainer import train

    recipe = make_recipe(f"model.name={config_only_model}", "lora.r=64", "lora.target_modules=all-linear")
    with pytest.raises(ConfigError, match="lora.r: rank 64 is above min"):
        train(recipe, progress=False)
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_the_shipped_rank_256_recipe_warns_about_smollm2_s_192_wide_projections(capsys):
    load_recipe(QUICKSTART.parent / "rslora-r256.yaml").check_environment()
    out = capsys.readouterr().out
    assert "rank 256 is above min(in, out) of 60 of the 210 layers it targets" in out and "(k_proj 192, v_proj 192)" in out
    with pytest.raises(ConfigError, match=r"lora\.r: rank 600 .* every layer .* use r ≤ 576$"):
        load_recipe(QUICKSTART, ["lora.r=600"]).check_environment()
