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
