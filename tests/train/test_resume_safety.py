"""Resume never loses or forges work: held stops, no double checkpoints, non-finite updates,
damaged checkpoints and metrics lines, failed resumes that change nothing, time-based checkpoints."""

import json
import os
import shutil
import signal

import pytest
import torch
from safetensors.torch import load_file, save_file

from loralab.errors import ConfigError
from loralab.stops import StopSignals, Stopped
from loralab.train import checkpoint as ckpt
from loralab.train.runs import RunFolder
from loralab.train.trainer import TrainingDiverged, resume, train

SETTINGS = ("train.max_steps=6", "lora.dropout=0.1", "train.micro_batch_size=3", "train.schedule=cosine",
            "train.warmup_steps=2", "train.checkpoint_every=2")  # fmt: skip


def _records(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _same(a, b):
    assert [r["step"] for r in a] == [r["step"] for r in b]
    assert [(r["loss"], r["grad_norm"], r["lr"]) for r in a] == [(r["loss"], r["grad_norm"], r["lr"]) for r in b]


def _adapter(run_dir):
    return load_file(str(run_dir / "adapter" / "adapter_model.safetensors"))


@pytest.fixture
def straight(make_recipe):
    result = train(make_recipe(*SETTINGS, "name=straight"), progress=False)
    return result.run_dir


def test_a_signal_during_the_update_is_held_until_the_step_is_recorded(make_recipe, tmp_path, monkeypatch, straight):
    real_hold, calls = StopSignals.hold, {"n": 0}

    def hold_then_signal(self):
        real_hold(self)
        calls["n"] += 1
        if calls["n"] == 3:  # inside step 3's update: the signal must wait for the record
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(StopSignals, "hold", hold_then_signal)
    with pytest.raises(Stopped) as stop:  # checkpoint_every=0: the only held sections are the updates
        train(make_recipe(*SETTINGS, "name=cut", "train.checkpoint_every=0"), progress=False)
    assert stop.value.signum == signal.SIGTERM
    run_dir = tmp_path / "runs" / "cut"
    assert [r["step"] for r in _records(run_dir)] == [1, 2, 3]
    assert RunFolder(run_dir).checkpoints()[-1][0] == 3
    monkeypatch.undo()
    resume(run_dir, progress=False)
    _same(_records(run_dir), _records(straight))
    assert all(torch.equal(v, _adapter(straight)[k]) for k, v in _adapter(run_dir).items())


def test_a_stop_right_after_a_checkpoint_does_not_write_it_again(make_recipe, tmp_path, monkeypatch):
    real_save, saved = ckpt.save_checkpoint, []

    def save_then_signal(folder, step, *args, **kwargs):
        saved.append(step)
        path = real_save(folder, step, *args, **kwargs)
        os.kill(os.getpid(), signal.SIGINT)  # arrives inside the held checkpoint write
        return path

    monkeypatch.setattr(ckpt, "save_checkpoint", save_then_signal)
    with pytest.raises(KeyboardInterrupt):
        train(make_recipe(*SETTINGS, "name=cut"), progress=False)
    assert saved == [2]  # step 2's checkpoint once, no second save with a later RNG state
    assert [r["step"] for r in _records(tmp_path / "runs" / "cut")] == [1, 2]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_while_the_final_adapter_is_written_waits_for_the_report(make_recipe, tmp_path, monkeypatch, capsys, signum):
    """A run with its final output counts as finished (studies skip it): its report must not be lost to a late signal."""
    from loralab.train.methods.lora import LoraMethod

    real_save = LoraMethod.save_final

    def save_then_signal(self, *args, **kwargs):
        os.kill(os.getpid(), signum)  # arrives before the adapter file and the report are written
        return real_save(self, *args, **kwargs)

    monkeypatch.setattr(LoraMethod, "save_final", save_then_signal)
    result = train(make_recipe(*SETTINGS, "name=late"), progress=False)  # no Stopped raised
    run = RunFolder(tmp_path / "runs" / "late")
    assert run.finished() and result.steps == 6
    assert run.report.is_file() and "optimiser steps" in run.report.read_text()
    assert f"{signal.Signals(signum).name} came while the final outputs were written" in capsys.readouterr().out


def test_an_update_that_makes_weights_nan_stops_without_recording_or_saving_it(make_recipe, tmp_path, monkeypatch):
    real_step, calls = torch.optim.AdamW.step, {"n": 0}

    def spoiling_step(self, *args, **kwargs):
        out = real_step(self, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 3:
            with torch.no_grad():
                self.param_groups[0]["params"][0][0, 0] = float("inf")
        return out

    monkeypatch.setattr(torch.optim.AdamW, "step", spoiling_step)
    with pytest.raises(TrainingDiverged, match=r"step 3: the update made .* non-finite.*step-00000002"):
        train(make_recipe(*SETTINGS, "name=nan", "train.checkpoint_every=1"), progress=False)
    run = RunFolder(tmp_path / "runs" / "nan")
    assert [step for step, _ in run.checkpoints()] == [1, 2]
    assert [r["step"] for r in run.read_metrics()] == [1, 2]
    for _, path in run.checkpoints():
        ckpt.load_checkpoint(path)  # refuses NaN: would raise


def test_a_non_finite_checkpoint_is_never_written(tmp_path):
    with pytest.raises(ckpt.NonFiniteCheckpoint, match="w"):
        ckpt.save_checkpoint(tmp_path, 1, {"w": torch.tensor([1.0, float("nan")])}, {"step": 1})
    assert ckpt.complete_checkpoints(tmp_path) == []


def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one(make_recipe, tmp_path, straight):
    first = train(make_recipe(*SETTINGS, "name=damaged", "train.max_steps=4", "train.keep_checkpoints=3"), progress=False)
    newest = first.run_dir / "checkpoints" / "step-00000004" / "tensors.safetensors"
    newest.write_bytes(newest.read_bytes()[:100])  # cut short
    more = resume(first.run_dir, ["train.max_steps=6"], progress=False)
    assert (first.run_dir / "checkpoints" / "step-00000004.damaged").is_dir()
    _same(_records(more.run_dir), _records(straight))


def test_a_checkpoint_holding_nan_counts_as_damaged(make_recipe, tmp_path):
    first = train(make_recipe(*SETTINGS, "name=nanck", "train.max_steps=4"), progress=False)
    path = first.run_dir / "checkpoints" / "step-00000004" / "tensors.safetensors"
    tensors = load_file(str(path))
    name = next(iter(tensors))
    tensors[name][0] = float("nan")
    save_file(tensors, str(path))
    with pytest.raises(ckpt.DamagedCheckpoint, match="NaN"):
        ckpt.load_checkpoint(path.parent)
    resume(first.run_dir, progress=False)  # falls back to step 2 and trains 3 and 4 again
    assert [r["step"] for r in _records(first.run_dir)] == [1, 2, 3, 4]


def test_a_garbled_metrics_line_does_not_cost_the_history_after_it(make_recipe, tmp_path, straight):
    cut = train(make_recipe(*SETTINGS, "name=garbled", "train.max_steps=4"), progress=False)
    lines = (cut.run_dir / "metrics.jsonl").read_text().splitlines()
    lines[1] = lines[1][:20] + "\x00garbage"
    (cut.run_dir / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    assert [r["step"] for r in RunFolder(cut.run_dir).read_metrics()] == [1, 3, 4]
    resume(cut.run_dir, ["train.max_steps=6"], progress=False)
    assert [r["step"] for r in _records(cut.run_dir)] == [1, 3, 4, 5, 6]


@pytest.mark.parametrize("override, says", [("lora.r=8", "lora.r"), ("model.name=tiny-gpt2", "model"),
                                            ("optimizer.name=sgd", "optimizer adamw")])  # fmt: skip
def test_a_failed_resume_changes_nothing(make_recipe, tmp_path, override, says):
    first = train(make_recipe(*SETTINGS, "name=kept", "train.max_steps=2"), progress=False)
    recipe_before = (first.run_dir / "recipe.yaml").read_bytes()
    metrics_before = (first.run_dir / "metrics.jsonl").read_bytes()
    with pytest.raises(ConfigError, match=says):
        resume(first.run_dir, [override, "train.max_steps=4"], progress=False)
    assert (first.run_dir / "recipe.yaml").read_bytes() == recipe_before
    assert (first.run_dir / "metrics.jsonl").read_bytes() == metrics_before
    resume(first.run_dir, ["train.max_steps=3"], progress=False)  # the run still resumes
    assert [r["step"] for r in _records(first.run_dir)] == [1, 2, 3]


def test_checkpoints_on_a_time_interval(make_recipe, tmp_path):
    done = train(make_recipe("train.max_steps=3", "train.checkpoint_every=0", "train.checkpoint_minutes=1e-9",
                             "train.keep_checkpoints=5"), progress=False)  # fmt: skip
    assert [step for step, _ in RunFolder(done.run_dir).checkpoints()] == [1, 2, 3]
    done = train(make_recipe("name=rare", "train.max_steps=3", "train.checkpoint_every=0", "train.keep_checkpoints=5"), progress=False)
    assert [step for step, _ in RunFolder(done.run_dir).checkpoints()] == [3]  # 10 min default: only the end


def test_metrics_are_strict_json(tmp_path):
    run = RunFolder(tmp_path)
    run.append_metrics({"step": 1, "loss": float("inf"), "grad_norm": float("nan"), "lr": 0.1})
    text = run.metrics_file.read_text()
    assert "Infinity" not in text and "NaN" not in text
    assert json.loads(text) == {"step": 1, "loss": None, "grad_norm": None, "lr": 0.1}


def test_only_damaged_checkpoints_is_an_error_not_a_silent_restart(make_recipe, tmp_path):
    first = train(make_recipe(*SETTINGS, "name=lost", "train.max_steps=2"), progress=False)
    for _, path in RunFolder(first.run_dir).checkpoints():
        (path / "state.pt").write_bytes(b"junk")
    with pytest.raises(ConfigError, match="no checkpoint can be read"):
        resume(first.run_dir, progress=False)
    shutil.rmtree(first.run_dir / "checkpoints")


def test_checkpoint_files_follow_the_umask(tmp_path):
    import stat

    old = os.umask(0o022)
    try:
        path = ckpt.save_checkpoint(tmp_path, 1, {"w": torch.ones(2)}, {"step": 1})
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in path.iterdir()}
    assert modes == {"tensors.safetensors": 0o644, "state.pt": 0o644, "COMPLETE": 0o644}, modes
