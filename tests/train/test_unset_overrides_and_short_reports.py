"""Overrides that unset a key (``~train.max_steps``, ``train.max_steps=null``), the loss line of short runs'
reports, and the packing error's advice (which names no recipe key that does not exist)."""

from __future__ import annotations

import pytest

from loralab.data import build_dataset
from loralab.data.records import TextRecord
from loralab.errors import ConfigError, DataError
from loralab.train.overrides import apply_overrides
from loralab.train.recipe import load_recipe
from loralab.train.report import loss_line


@pytest.mark.parametrize("unset", ["~train.max_steps", "train.max_steps=null"])
def test_unsetting_max_steps_switches_a_recipe_to_epochs(unset):
    assert load_recipe("recipes/quickstart.yaml").train.max_steps == 16
    recipe = load_recipe("recipes/quickstart.yaml", [unset, "train.epochs=2"])
    assert recipe.train.max_steps is None and recipe.train.epochs == 2


def test_removal_overrides():
    raw = {"train": {"max_steps": 3, "lr": 1}}
    assert apply_overrides(raw, ["~train.max_steps"]) == {"train": {"lr": 1}}
    assert raw == {"train": {"max_steps": 3, "lr": 1}}  # the input is not changed
    for bad, message in (("~train.epochs", "no train.epochs to remove"), ("~eval.limit", "no eval.limit to remove"),
                         ("~train.max_steps=3", "takes no value"), ("~", "takes no value"),
                         ("train.max_steps", "or ~key")):  # fmt: skip
        with pytest.raises(ConfigError, match=message):
            apply_overrides(raw, [bad])


def test_removal_override_on_the_command_line(tmp_path, capsys):
    from loralab.cli import main

    assert main(["train", "recipes/quickstart.yaml", "~train.no_such_key", f"output_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert "no train.no_such_key to remove" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "losses, line",
    [
        ([2.0], "2.0000 (one step)"),
        ([2.0, 1.0], "2.0000 (first step) → 1.0000 (last step)"),
        ([4.0, 3.0, 2.0], "4.0000 (first step) → 2.0000 (last step)"),
        ([4.0, 3.0, 2.0, 1.0], "3.5000 (mean of the first 2 steps) → 1.5000 (last 2)"),
        ([float(10 - i) for i in range(12)], "8.0000 (mean of the first 5 steps) → 1.0000 (last 5)"),
    ],
)
def test_loss_line_never_shares_steps_between_first_and_last(losses, line):
    assert loss_line(losses) == line


def test_packing_advice_names_settings_that_exist(smol_tokenizer):
    with pytest.raises(DataError) as caught:
        build_dataset([TextRecord("two words")], smol_tokenizer, block_size=64)
    assert "data.block_size" in str(caught.value) and "build_dataset(..., keep_partial_block=True)" in str(caught.value)
    assert len(build_dataset([TextRecord("two words")], smol_tokenizer, block_size=64, keep_partial_block=True)) == 1
