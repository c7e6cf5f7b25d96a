"""One-at-a-time designs, seeds, sensitivity, axis plots and analyses over trials, against hand-computed values."""

import json
import math

import pytest
import yaml

from loralab.errors import ConfigError
from loralab.studies import load_study, run_study
from loralab.studies.axis_plot import axis_series, plot_axis
from loralab.studies.options import AxisPlot
from loralab.studies.summary import balanced_groups, group_values, sensitivity


@pytest.fixture
def base_recipe(tmp_path, data_file):
    path = tmp_path / "base.yaml"
    path.write_text(yaml.safe_dump({
        "name": "base", "method": "lora", "model": {"name": "tiny-llama"},
        "lora": {"r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj"]},
        "data": {"path": str(data_file), "max_length": 64},
        "optimizer": {"lr": 3e-2},
        "train": {"max_steps": 2, "micro_batch_size": 4, "schedule": "constant", "precision": "fp32"},
        "eval": {"tasks": [f"ppl:{data_file}"], "limit": 4, "precision": "fp32", "before": False},
    }))  # fmt: skip
    return path


def _study(tmp_path, base_recipe, **fields):
    raw = {"name": "s", "recipe": str(base_recipe), "output_dir": str(tmp_path / "runs"), **fields}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_one_at_a_time_varies_each_axis_around_the_centre(tmp_path, base_recipe):
    study = load_study(_study(tmp_path, base_recipe, one_at_a_time={"optimizer.lr": [1e-3, 3e-2, 1e-1], "lora.r": [2, 4, 8]},
                              overrides={"lora.r": 4}, seeds=[0, 1]))  # fmt: skip
    groups = list(dict.fromkeys(t.group for t in study.trials))
    assert groups == ["center", "lr=0.001", "lr=0.1", "r=2", "r=8"]  # the centre's own values are not repeated
    assert dict(study.center) == {"optimizer.lr": 0.03, "lora.r": 4}
    by_name = {t.name: t for t in study.trials}
    assert study.values(by_name["r=8-seed1"]) == {"optimizer.lr": 0.03, "lora.r": 8, "train.seed": 1}
    assert study.recipe(by_name["lr=0.001-seed0"]).optimizer.lr == 1e-3 and study.recipe(by_name["lr=0.001-seed0"]).lora.r == 4


@pytest.mark.parametrize("fields, message", [
    ({"one_at_a_time": {"lora.r": []}}, "one_at_a_time.lora.r must be a non-empty list"),
    ({"trials": [{"name": "logs"}]}, "trial name 'logs' is taken by the study's own folder"),
    ({"grid": {"lora.r": [2]}, "analyze": {"spectrum": ["nope"]}}, "analyze.spectrum: no trial named 'nope'"),
    ({"grid": {"lora.r": [2]}, "analyze": {"subspace": {"pairs": [["r=2"]]}}}, "a list of [trial, trial] pairs"),
    ({"grid": {"lora.r": [2]}, "plots": [{"metric": "ppl", "x": "lora.r"}]}, "task/metric as in results.csv"),
    ({"grid": {"lora.r": [2]}, "plots": [{"metric": "a/b", "x": "lora.alpha"}]}, "'lora.alpha' is not a key the trials vary"),
])  # fmt: skip
def test_design_mistakes_are_one_line_errors(tmp_path, base_recipe, fields, message):
    with pytest.raises(ConfigError) as err:
        load_study(_study(tmp_path, base_recipe, **fields))
    assert message in str(err.value) and "\n" not in str(err.value)


def _row(trial, group, value, stderr=0.05, step=10, **keys):
    return {"trial": trial, "group": group, "task": "t", "metric": "acc", "domain": "target", "higher_is_better": "True",
            "step": str(step), "value": str(value), "stderr": str(stderr), **{k: str(v) for k, v in keys.items()}}  # fmt: skip


def test_seeds_are_averaged_and_sensitivity_compares_values():
    rows = [_row("c-seed0", "c", 0.5, lr=1e-3, r=16, step=5), _row("c-seed0", "c", 0.6, lr=1e-3, r=16),
            _row("c-seed1", "c", 0.7, lr=1e-3, r=16),
            _row("lr-seed0", "lr", 0.1, lr=1e-2, r=16), _row("lr-seed1", "lr", 0.3, lr=1e-2, r=16),
            _row("r-seed0", "r", 0.62, lr=1e-3, r=64), _row("r-seed1", "r", 0.64, lr=1e-3, r=64)]  # fmt: skip
    groups = {g.group: g for g in group_values(rows, "t", "acc", ["lr", "r", "train.seed"])}
    c = groups["c"]  # the final points (step 10): 0.6 and 0.7
    assert c.seeds == 2 and c.mean == pytest.approx(0.65) and c.spread == pytest.approx(math.sqrt(0.005))
    assert c.stderr == pytest.approx(math.sqrt(0.005) / math.sqrt(2))
    found = sensitivity(list(groups.values()), ["lr", "r", "train.seed"], {"lr": 1e-3, "r": 16})
    assert [s.key for s in found] == ["lr", "r"]  # the learning rate moves accuracy most
    assert found[0].means == {"0.001": pytest.approx(0.65), "0.01": pytest.approx(0.2)} and found[0].range == pytest.approx(0.45)
    assert found[1].range == pytest.approx(0.63 - 0.65, abs=1e-12) or found[1].range == pytest.approx(0.02)
    marginal = sensitivity(list(groups.values()), ["lr"], {})  # without a centre: every group with the value
    assert marginal[0].means["0.001"] == pytest.approx((0.65 + 0.63) / 2) and marginal[0].design == "marginal"


def test_marginal_sensitivity_compares_values_over_the_same_conditions():
    """A 2 × 2 grid (r × lr) and one extra trial (r = 8 at the good lr): r = 8's mean must not be compared with
    the others' means over both rates, nor may it tilt the lr comparison."""
    grid = {(4, 1e-3): 0.8, (4, 1e-4): 0.2, (64, 1e-3): 0.9, (64, 1e-4): 0.3}
    rows = [_row(f"r{r}-{lr}", f"r{r}-{lr}", acc, r=r, lr=lr) for (r, lr), acc in grid.items()]
    rows.append(_row("r8", "r8", 0.85, r=8, lr=1e-3))
    groups = group_values(rows, "t", "acc", ["r", "lr"])
    found = {s.key: s for s in sensitivity(groups, ["r", "lr"], {})}
    assert found["r"].means == {"4": pytest.approx(0.5), "64": pytest.approx(0.6)}  # r = 8 was run at one lr only
    assert found["r"].range == pytest.approx(0.1) and (found["r"].used, found["r"].total) == (4, 5)
    assert found["lr"].means == {"0.001": pytest.approx(0.85), "0.0001": pytest.approx(0.25)}  # without the extra trial
    assert [s.key for s in sensitivity(groups, ["r", "lr"], {})] == ["lr", "r"]
    assert len(balanced_groups(groups, "r", ["r", "lr"])) == 4  # the grid (2 × 2) rather than r = 4, 8, 64 at one lr (3)
    rows.append(_row("r8-low", "r8-low", 0.25, r=8, lr=1e-4))  # now r = 8 was run at both rates: it joins
    groups = group_values(rows, "t", "acc", ["r", "lr"])
    assert sensitivity(groups, ["r", "lr"], {})[-1].means["8"] == pytest.approx(0.55) and len(balanced_groups(groups, "r", ["r", "lr"])) == 6


def test_sensitivity_finds_the_block_where_values_share_conditions_and_names_keys_it_cannot_separate(tmp_path):
    """learn-forget's shape: LoRA at two ranks (alpha = 2r) × two rates, full fine-tuning at two other rates, one of
    them also with dropout. The rates compare within LoRA (both ranks); rank and alpha change together, and the
    method with every other key: those cannot be compared, and the report says so."""
    from loralab.studies.report import _sensitivity_section

    trials = [(16, 32, "2e-4", "lora", 0, 0.9), (16, 32, "1e-3", "lora", 0, 0.8), (256, 512, "2e-4", "lora", 0, 0.6),
              (256, 512, "1e-3", "lora", 0, 0.1), ("", "", "1e-5", "full", 0, 0.88), ("", "", "5e-5", "full", 0, 0.77),
              ("", "", "5e-5", "full", 0.1, 0.43)]  # fmt: skip
    keys = ["r", "alpha", "lr", "method", "dropout"]
    rows = [_row(f"t{i}", f"t{i}", acc, **dict(zip(keys, t))) for i, (*t, acc) in enumerate(trials)]
    groups = group_values(rows, "t", "acc", keys)
    found = {s.key: s for s in sensitivity(groups, keys, {})}
    assert set(found) == {"lr", "dropout"}
    assert found["lr"].means == {"2e-4": pytest.approx(0.75), "1e-3": pytest.approx(0.45)} and found["lr"].used == 4
    assert found["dropout"].means == {"0": pytest.approx(0.77), "0.1": pytest.approx(0.43)} and found["dropout"].used == 2
    text = "\n".join(_sensitivity_section(groups, ("t", "acc"), keys, {}))
    assert "| lr | marginal, 4 of 7 groups | 0.300 |" in text and "Not compared: r, alpha, method —" in text


def test_axis_series_takes_the_best_learning_rate_per_rank_and_rule(tmp_path):
    rows = []
    for rule, r, lr, acc in [(False, 4, 1e-3, 0.5), (False, 4, 1e-2, 0.6), (False, 64, 1e-3, 0.3), (False, 64, 1e-2, 0.55),
                             (True, 4, 1e-3, 0.52), (True, 4, 1e-2, 0.2), (True, 64, 1e-3, 0.7), (True, 64, 1e-2, 0.1)]:  # fmt: skip
        name = f"{rule}-{r}-{lr}"
        rows.append(_row(name, name, acc, rslora=rule, r=r, lr=lr))
    groups = group_values(rows, "t", "acc", ["rslora", "r", "lr"])
    spec = AxisPlot("t/acc", "r", "rslora", ("lr",))
    lines = axis_series(spec, groups, True, ["rslora", "r", "lr"])
    assert list(lines) == ["rslora=False", "rslora=True"]
    assert [(p.x, p.mean, p.chosen["lr"]) for p in lines["rslora=False"]] == [("4", 0.6, "0.01"), ("64", 0.55, "0.01")]
    assert [(p.x, p.mean, p.chosen["lr"]) for p in lines["rslora=True"]] == [("4", 0.52, "0.001"), ("64", 0.7, "0.001")]
    at_equal = axis_series(AxisPlot("t/acc", "r", "rslora", where=(("lr", 1e-3),)), groups, True, ["rslora", "r", "lr"])
    assert [p.mean for p in at_equal["rslora=True"]] == [0.52, 0.7] and [p.mean for p in at_equal["rslora=False"]] == [0.5, 0.3]
    png = plot_axis(spec, lines, tmp_path / "axis.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_a_study_runs_its_analyses_once_and_reports_them(tmp_path, base_recipe, data_file):
    path = _study(tmp_path, base_recipe, grid={"lora.r": [2, 4]},
                  analyze={"spectrum": "all", "subspace": {"pairs": [["r=2", "r=4"]], "of": ["A", "delta-left"]}},
                  plots=[{"metric": f"ppl:{data_file}/perplexity", "x": "lora.r"}])  # fmt: skip
    study = load_study(path)
    run_study(study, progress=False)
    folder = study.folder
    spectrum = json.loads((folder / "analysis" / "spectrum-r=2.json").read_text())
    for kind, s in spectrum["by_type"].items():  # a rank-2 LoRA update has rank ≤ 2, and it moved
        assert 1 <= s["rank"] <= 2 and s["bound"] == 2 and s["relative_norm"] > 0
    similar = json.loads((folder / "analysis" / "subspace-r=2-vs-r=4-delta-left.json").read_text())
    assert similar["of"] == "delta-left" and all(0 <= s["phi_1_1"] <= 1 for s in similar["by_type"].values())
    report = (folder / "report.md").read_text()
    assert "## Weight updates" in report and "| r=2 vs r=4 | A |" in report and "| r=4 | q_proj |" in report
    assert f"## ppl:{data_file}/perplexity vs lora.r" in report and len(list(folder.glob("ppl-*perplexity_vs_r.png"))) == 1
    saved = (folder / "analysis" / "spectrum-r=4.json").stat().st_mtime_ns
    run_study(load_study(path), progress=False)  # computed once
    assert (folder / "analysis" / "spectrum-r=4.json").stat().st_mtime_ns == saved


def test_compare_reports_runs_made_separately(tmp_path, base_recipe):
    from loralab.studies.compare import compare_runs
    from loralab.studies.results import read_results
    from loralab.train.recipe import load_recipe
    from loralab.train.trainer import train

    for r in (2, 4):
        train(load_recipe(base_recipe, [f"lora.r={r}", f"name=r{r}", f"output_dir={tmp_path / 'runs'}"]), progress=False)
    from loralab.studies.compare import compare_main

    out, varied = compare_runs([tmp_path / "runs" / "r2", tmp_path / "runs" / "r4"], tmp_path / "cmp")
    assert varied == ["lora.r"]  # the only recipe key that differs (names and folders aside)
    assert not list(out.glob("*_vs_step*.png"))
    compare_main([str(tmp_path / "runs" / "r2"), str(tmp_path / "runs" / "r4"), "--out", str(out),
                  "--plot", "{metric: train/loss, x: step, by: lora.r}"])  # fmt: skip
    assert (out / "train-loss_vs_step_by_r.png").is_file() and "| r=4 | 1: " in (out / "report.md").read_text()
    for bad, message in [("{metric: train/loss, x: step, by: lora.alpha}", "'lora.alpha' is not a key the runs differ in"),
                         ("{metric: train/loss, x: [", "write a mapping"), ("{metric: loss, x: step}", "task/metric")]:  # fmt: skip
        with pytest.raises(ConfigError, match=message):
            compare_main([str(tmp_path / "runs" / "r2"), str(tmp_path / "runs" / "r4"), "--out", str(out), "--plot", bad])
    rows = read_results(out / "results.csv")
    evaluated = [r for r in rows if r["point"] != "train"]
    assert {(r["trial"], r["lora.r"], r["point"]) for r in evaluated} == {("r2", "2", "final"), ("r4", "4", "final")}
    saved = json.loads((tmp_path / "runs" / "r4" / "eval" / "final.json").read_text())
    assert float(next(r for r in evaluated if r["trial"] == "r4")["value"]) == pytest.approx(saved[0]["value"])
    logged = [json.loads(line) for line in (tmp_path / "runs" / "r4" / "metrics.jsonl").read_text().splitlines()]
    trained = [(int(r["step"]), float(r["value"])) for r in rows if r["trial"] == "r4" and r["metric"] == "loss"]
    assert trained == [(m["step"], pytest.approx(m["loss"])) for m in logged]  # a short run: every step's loss
    assert (out / "report.md").read_text().startswith("# Study `compare: r2, r4`")


def test_dry_run_lists_trials_steps_and_time_from_finished_trials(tmp_path, base_recipe, capsys):
    from loralab.cli import main

    path = _study(tmp_path, base_recipe, grid={"lora.r": [2, 4]}, overrides={"train.max_steps": 3})
    assert main(["study", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "r=2" in out and "2 to run, 6 optimiser steps in all" in out and "estimated time: unknown" in out
    assert not (tmp_path / "runs").exists()  # a dry run writes nothing
    study = load_study(path)
    from loralab.train.trainer import train

    train(study.recipe(study.trials[0]), progress=False)
    assert main(["study", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "skip (finished)" in out and "1 to run, 3 optimiser steps in all" in out and "s per step" in out
