"""Studies: validated up front, one ordinary run folder per trial, resumable, failures recorded."""

import json

import pytest
import yaml
from study_recipes import write_base_recipe

from loralab.errors import ConfigError
from loralab.studies import load_study, plan, read_results, run_study
from loralab.train.runs import RunFolder


@pytest.fixture
def base_recipe(tmp_path, data_file):
    return write_base_recipe(tmp_path, data_file)


def _study(tmp_path, base_recipe, **fields):
    raw = {"name": "sweep", "recipe": str(base_recipe), "output_dir": str(tmp_path / "runs"), **fields}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_grid_trials_seeds_and_their_recipes(tmp_path, base_recipe):
    study = load_study(_study(tmp_path, base_recipe, grid={"lora.r": [2, 8], "lora.rslora": [False, True]},
                              trials=[{"name": "full", "overrides": {"method": "full", "lora": None, "optimizer.lr": 5e-5}}],
                              seeds=[0, 1], overrides={"train.max_steps": 1}))  # fmt: skip
    names = [t.name for t in study.trials]
    assert names[:2] == ["full-seed0", "full-seed1"] and len(names) == 2 * (1 + 4)
    assert "r=8_rslora=true-seed1" in names
    recipe = study.recipe(next(t for t in study.trials if t.name == "r=8_rslora=true-seed1"))
    assert (recipe.lora.r, recipe.lora.rslora, recipe.train.seed, recipe.train.max_steps) == (8, True, 1, 1)
    assert recipe.run_dir == tmp_path / "runs" / "sweep" / "r=8_rslora=true-seed1"
    full = study.recipe(study.trials[0])
    assert full.method == "full" and full.optimizer.lr == 5e-5
    assert set(study.varied_keys) == {"method", "optimizer.lr", "train.seed", "lora.r", "lora.rslora"}  # not `lora: null`


@pytest.mark.parametrize("fields, message", [
    ({"grid": {"lora.rank": [4]}}, "trial 'rank=4': "),
    ({"trials": [{"name": "a", "overrides": {}}, {"name": "a", "overrides": {}}]}, "duplicate trial names ['a']"),
    ({}, "the study has no trials"),
    ({"grid": {"lora.r": [4]}, "sweeps": 3}, "unknown key 'sweeps'"),
    ({"grid": {"lora.r": []}}, "grid.lora.r must be a non-empty list"),
    ({"trials": [{"name": "../x"}]}, "trials[0]: name must be a folder name"),
])  # fmt: skip
def test_mistakes_are_one_line_errors_naming_the_place(tmp_path, base_recipe, fields, message):
    with pytest.raises(ConfigError) as err:
        load_study(_study(tmp_path, base_recipe, **fields))
    assert message in str(err.value) and "\n" not in str(err.value)
    if "rank=4" in message:
        assert "'rank'" in str(err.value) or "lora.rank" in str(err.value)


def test_a_study_runs_resumes_and_records_failures(tmp_path, base_recipe, data_file):
    trials = [{"name": "bad-data", "overrides": {"data.path": str(tmp_path / "missing.jsonl")}}]
    plots = [{"metric": "train/loss", "x": "step", "by": "lora.r"}]  # curves along training: the loss of each rank
    path = _study(tmp_path, base_recipe, grid={"lora.r": [2, 4]}, trials=trials, plots=plots)
    study = load_study(path)
    assert [(t.name, action) for t, action, _ in plan(study)] == [("bad-data", "train"), ("r=2", "train"), ("r=4", "train")]
    outcome = run_study(study, progress=False)
    status = json.loads((study.folder / "status.json").read_text())
    assert status["bad-data"]["status"] == "failed" and "missing.jsonl" in status["bad-data"]["error"]
    assert status["r=2"]["status"] == status["r=4"]["status"] == "done"
    for name in ("r=2", "r=4"):  # ordinary run folders: every tool reads them
        run = RunFolder.existing(study.folder / name)
        assert run.finished() and run.recipe().lora.r == int(name[2:])
    rows = read_results(study.folder / "results.csv")
    # the failed trial: one row; the others: before, final, and the loss and gradient norm of each of 2 steps
    assert len(rows) == len(outcome.rows) == 1 + 2 * (2 + 2 + 2)
    by_trial = {}
    for row in rows:
        by_trial.setdefault(row["trial"], []).append(row)
    assert [r["status"] for r in by_trial["bad-data"]] == ["failed"]
    points = [(r["point"], r["step"], r["metric"]) for r in by_trial["r=4"]]
    assert points == [("before", "0", "perplexity"), ("final", "2", "perplexity"), ("train", "1", "loss"), ("train", "2", "loss"),
                      ("train", "1", "grad_norm"), ("train", "2", "grad_norm")]  # fmt: skip
    final = by_trial["r=4"][1]
    records = [json.loads(line) for line in (study.folder / "r=4" / "metrics.jsonl").read_text().splitlines()]
    logged = [m["loss"] for m in records]
    assert [float(r["value"]) for r in by_trial["r=4"][2:]] == pytest.approx(logged + [m["grad_norm"] for m in records])
    report = (study.folder / "report.md").read_text()
    assert (study.folder / "train-loss_vs_step_by_r.png").read_bytes()[:4] == b"\x89PNG"
    assert f"| r=4 | 1: {logged[0]:.4g}, 2: {logged[1]:.4g} |" in report  # the curve's table: the losses as logged
    assert final["lora.r"] == "4" and final["metric"] == "perplexity" and float(final["tokens"]) > 0
    assert float(final["value"]) != float(by_trial["r=4"][0]["value"])  # training moved the perplexity
    # again: finished trials are skipped and kept, the failed one is tried again (and fails again)
    finished_at = (study.folder / "r=2" / "adapter" / "adapter_model.safetensors").stat().st_mtime_ns
    again = run_study(load_study(path), progress=False)
    assert again.status["r=2"]["status"] == "done before" and again.status["bad-data"]["status"] == "failed"
    assert (study.folder / "r=2" / "adapter" / "adapter_model.safetensors").stat().st_mtime_ns == finished_at
    assert yaml.safe_load((study.folder / "study.yaml").read_text())["name"] == "sweep"
    assert "nothing to compare" in (study.folder / "report.md").read_text()  # perplexity only: no target metric


def test_an_unfinished_trial_is_resumed_not_restarted(tmp_path, base_recipe):
    from loralab.train.trainer import train

    path = _study(tmp_path, base_recipe, grid={"lora.r": [2]}, overrides={"train.max_steps": 4, "train.checkpoint_every": 2})
    study = load_study(path)
    recipe = study.recipe(study.trials[0])
    train(recipe, progress=False)
    run = RunFolder(recipe.run_dir)
    before = run.read_metrics()
    (run.adapter / "adapter_config.json").unlink()  # as if stopped after its last checkpoint
    assert [action for _, action, _ in plan(study)] == ["resume"]
    outcome = run_study(study, progress=False)
    assert outcome.status["r=2"]["status"] == "done" and run.finished()
    assert run.read_metrics() == before  # continued from the checkpoint: no step run twice


def test_every_shipped_study_is_valid():
    from pathlib import Path

    shipped = sorted((Path(__file__).parents[2] / "studies").glob("*.yaml"))
    assert len(shipped) >= 2
    for path in shipped:
        study = load_study(path)
        assert study.trials and all(study.recipe(t).name == t.name for t in study.trials)
