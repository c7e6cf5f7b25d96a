"""``loralab merge``: a plain Hugging Face folder whose logits equal the adapted model's."""

import subprocess
import sys

import pytest
import torch

from loralab.cli import main
from loralab.lora import load_adapter
from loralab.train.model_setup import base_model
from loralab.train.trainer import train

CHECK = """
import sys, torch
from transformers import AutoModelForCausalLM
model = AutoModelForCausalLM.from_pretrained(sys.argv[1])
assert not any(name.startswith("loralab") for name in sys.modules), "loralab was imported"
ids = torch.tensor([[1, 5, 9, 200, 17, 3000, 42]])
torch.save(model(input_ids=ids).logits, sys.argv[2])
"""


def test_merged_folder_loads_without_loralab_and_matches_the_adapter(make_recipe, tmp_path):
    recipe = make_recipe("train.max_steps=3")
    run = train(recipe, progress=False)
    out = tmp_path / "merged"
    assert main(["merge", str(run.run_dir), "--out", str(out)]) == 0

    logits_file = tmp_path / "logits.pt"
    subprocess.run([sys.executable, "-c", CHECK, str(out), str(logits_file)], check=True)
    merged = torch.load(logits_file)

    model, _ = base_model(recipe)
    load_adapter(model, run.run_dir / "adapter")
    ids = torch.tensor([[1, 5, 9, 200, 17, 3000, 42]])
    with torch.no_grad():
        adapted = model(input_ids=ids).logits
        base = base_model(recipe)[0](input_ids=ids).logits
    assert (adapted - base).abs().max() > 1e-3  # the adapter matters...
    torch.testing.assert_close(merged, adapted, rtol=1e-4, atol=1e-4)  # ...and the merged model has it


def test_merge_of_a_full_run_copies_the_model(make_recipe, tmp_path):
    run = train(make_recipe("method=full", "lora=null", "train.max_steps=1"), progress=False)
    out = tmp_path / "merged-full"
    assert main(["merge", str(run.run_dir), "--out", str(out)]) == 0
    assert (out / "config.json").is_file()


def test_merge_errors(make_recipe, tmp_path, capsys):
    assert main(["merge", str(tmp_path), "--out", str(tmp_path / "x")]) == 2
    run = train(make_recipe("train.max_steps=1"), progress=False)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "file").write_text("x")
    assert main(["merge", str(run.run_dir), "--out", str(tmp_path / "full")]) == 2
    err = capsys.readouterr().err
    assert "not a run folder" in err and "not empty" in err
