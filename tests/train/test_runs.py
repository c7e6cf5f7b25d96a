"""The one reader of run folders: a finished run is read without its training data; evaluations,
checkpoints and the saved recipe come back; old recipe.yaml files (every section written) still load."""

import json

from pathlib import Path

import pytest
import yaml

from loralab.cli import main
from loralab.errors import ConfigError
from loralab.train.runs import RunFolder, open_run
from loralab.train.trainer import resume, train


@pytest.fixture
def finished_run(make_recipe):
    """A 3-step LoRA run with evaluations before, at step 2 and at the end, and two checkpoints."""
    recipe = make_recipe("train.max_steps=3", "train.checkpoint_every=2", "eval.tasks=[arith]", "eval.limit=2",
                         "eval.every=2", "eval.settings={max_new_tokens: 4}")  # fmt: skip
    return train(recipe, progress=False).run_dir


def test_merge_and_analyze_work_after_the_training_data_is_deleted(finished_run, data_file, tmp_path, capsys):
    data_file.unlink()
    out = tmp_path / "merged"
    assert main(["merge", str(finished_run), "--out", str(out)]) == 0
    assert (out / "config.json").is_file()
    analysis = tmp_path / "analysis"
    assert main(["analyze", "spectrum", str(finished_run), "--out", str(analysis), "--no-plots", "--no-progress"]) == 0
    assert list(analysis.glob("*.json"))
    # training again does need the data: a one-line error naming the key, before any work
    assert main(["train", "--resume", str(finished_run), "train.max_steps=4", "--no-progress"]) == 2
    assert "data.path: data file" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="data.path"):
        resume(finished_run, ["train.max_steps=4"], progress=False)


def test_the_reader_gives_back_what_the_run_wrote(finished_run):
    run = open_run(finished_run)
    recipe = run.recipe()
    assert recipe.method == "lora" and recipe.train.max_steps == 3 and run.method.uses_adapter
    assert run.finished() and run.output() == finished_run / "adapter"
    assert [step for step, _ in run.checkpoints()] == [2, 3]
    assert run.checkpoint(2).name == "step-00000002"
    with pytest.raises(ConfigError, match=r"no complete checkpoint at step 1 \(complete checkpoints: 2, 3\)"):
        run.checkpoint(1)
    evaluations = run.evaluations()
    assert list(evaluations) == ["before", "step-00000002", "final"]
    saved = json.loads((finished_run / "eval" / "final.json").read_text())
    assert [(r.task, r.metric, r.value) for r in evaluations["final"]] == [(r["task"], r["metric"], r["value"]) for r in saved]
    assert {r.task for r in evaluations["final"]} == {"arith"}
    assert [r["step"] for r in run.read_metrics()] == [1, 2, 3]


def test_a_folder_without_its_recipe_is_not_finished(finished_run, tmp_path):
    """A study asks every trial folder whether it is finished, also those not started or half written."""
    assert RunFolder(finished_run).finished()
    assert not RunFolder(tmp_path / "never-started").finished()
    (finished_run / "recipe.yaml").unlink()  # e.g. a copy of the adapter without the recipe
    assert not RunFolder(finished_run).finished()


def test_an_older_recipe_yaml_with_every_section_still_loads(finished_run):
    """Runs written before recipes kept only their method's sections: quant was saved for a LoRA run."""
    path = finished_run / "recipe.yaml"
    raw = yaml.safe_load(path.read_text())
    raw["quant"] = {"block_size": 64}
    path.write_text(yaml.safe_dump(raw))
    assert RunFolder(finished_run).recipe().method == "lora"
    with pytest.raises(ConfigError, match="not used by method lora"):  # a recipe given to train is strict
        from loralab.train.recipe import load_recipe

        load_recipe(path)


def test_not_a_run_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        open_run(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no recipe.yaml"):
        open_run(tmp_path / "empty")


def test_each_method_names_its_sections_and_output():
    from loralab.train.methods import METHODS

    assert {name: m.sections for name, m in METHODS.items()} == {"lora": ("lora",), "qlora": ("lora", "quant"), "full": ()}
    assert [m.uses_adapter for m in METHODS.values()] == [True, True, False]
    run = RunFolder(Path("/tmp/x"))
    assert METHODS["full"].output_folder(run).name == "model" and METHODS["qlora"].output_folder(run).name == "adapter"
