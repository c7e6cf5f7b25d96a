"""A study's curves along training: the training loss in results.csv (block means) and ``x: step`` plots."""

import pytest

from loralab.errors import ConfigError
from loralab.studies.options import parse_plots
from loralab.studies.results import TRAIN_POINTS, training_rows
from loralab.studies.step_plot import moving_mean, step_series, step_table


def _metrics(steps):
    return [{"step": s, "loss": 1.0 / s, "tokens": 10, "seconds": 0.5, "peak_memory_mb": 100.0 + s} for s in range(1, steps + 1)]


def test_a_short_run_keeps_every_step_and_its_place_on_the_timeline():
    rows = training_rows(_metrics(5))
    assert [(r["step"], r["value"], r["n"]) for r in rows] == [(s, 1.0 / s, 1) for s in range(1, 6)]
    assert [(r["tokens"], r["seconds"], r["peak_memory_mb"]) for r in rows][-1] == (50, 2.5, 105.0)
    assert {(r["task"], r["metric"], r["domain"], r["point"], r["higher_is_better"]) for r in rows} == {  # no other metric logged
        ("train", "loss", "train", "train", False)}


def test_a_long_run_is_averaged_over_blocks_of_steps():
    steps = 3 * TRAIN_POINTS + 2  # blocks of 4 steps, the last one shorter
    rows = training_rows(_metrics(steps))
    assert len(rows) == -(-steps // 4) <= TRAIN_POINTS
    assert rows[0]["step"] == 4 and rows[0]["value"] == pytest.approx(sum(1.0 / s for s in range(1, 5)) / 4)
    assert rows[-1]["step"] == steps and rows[-1]["n"] == steps % 4 == 2
    assert rows[-1]["value"] == pytest.approx(sum(1.0 / s for s in range(steps - rows[-1]["n"] + 1, steps + 1)) / rows[-1]["n"])
    assert sum(r["n"] for r in rows) == steps


def test_every_logged_training_metric_gets_its_curve():
    metrics = [{**m, "grad_norm": 2.0 * m["step"], "reward_accuracy": 0.5} for m in _metrics(3)]
    rows = training_rows(metrics)
    assert [(r["metric"], r["step"], r["value"]) for r in rows if r["metric"] != "loss"] == [
        ("grad_norm", 1, 2.0), ("grad_norm", 2, 4.0), ("grad_norm", 3, 6.0),
        ("reward_accuracy", 1, 0.5), ("reward_accuracy", 2, 0.5), ("reward_accuracy", 3, 0.5)]
    assert {r["metric"]: r["higher_is_better"] for r in rows} == {"loss": False, "grad_norm": None, "reward_accuracy": True}


def test_steps_without_a_finite_loss_are_left_out():
    metrics = _metrics(3)
    metrics[1]["loss"] = float("nan")
    del metrics[2]["loss"]
    assert [r["step"] for r in training_rows(metrics)] == [1]
    assert training_rows([]) == []


def _row(group, seed, step, value, **keys):
    return {"trial": f"{group}-seed{seed}", "group": group, "task": "train", "metric": "loss", "step": str(step),
            "value": str(value), **{k: str(v) for k, v in keys.items()}}  # fmt: skip


def test_curves_average_seeds_and_split_by_the_keys_that_differ():
    rows = []
    for rule in (False, True):
        for r in (4, 64):
            for seed in (0, 1):
                rows += [_row(f"{rule}-{r}", seed, s, s * r + seed + (100 if rule else 0), rslora=rule, r=r, lr=1e-3) for s in (1, 2)]
    varied = ["rslora", "r", "lr", "train.seed"]
    spec = parse_plots([{"metric": "train/loss", "x": "step", "by": "r", "where": {"rslora": True}}], "s")[0]
    curves = step_series(spec, rows, varied)
    assert curves == {"r=4": [(1, 104.5), (2, 108.5)], "r=64": [(1, 164.5), (2, 228.5)]}  # lr is the same: not named
    every = step_series(parse_plots([{"metric": "train/loss", "x": "step"}], "s")[0], rows, varied)
    assert list(every) == ["rslora=False, r=4", "rslora=False, r=64", "rslora=True, r=4", "rslora=True, r=64"]
    assert step_table(spec, curves)[2] == "| r=4 | 1: 104.5, 2: 108.5 |"


def test_moving_mean_is_centred_and_shorter_at_the_ends():
    assert moving_mean([1.0, 2.0, 3.0, 4.0, 5.0], 3) == pytest.approx([1.5, 2.0, 3.0, 4.0, 4.5])


def test_a_plot_along_training_takes_no_best_over():
    with pytest.raises(ConfigError, match="best_over"):
        parse_plots([{"metric": "train/loss", "x": "step", "best_over": ["optimizer.lr"]}], "study.yaml")
    assert parse_plots([{"metric": "train/loss", "x": "step"}], "study.yaml")[0].over_steps
