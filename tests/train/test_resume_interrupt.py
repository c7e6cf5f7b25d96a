"""Resume equals uninterrupted; Ctrl-C checkpoints; half-written checkpoints are skipped; NaN stops."""

import json
import shutil

import pytest

from loralab.train.trainer import Trainer, TrainingDiverged, resume, train


def _records(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _interrupt_at(monkeypatch, when: int):
    """Make step ``when`` (0-based) raise KeyboardInterrupt, as a Ctrl-C would."""
    real = Trainer._step

    def step(self, index):
        if index == when:
            raise KeyboardInterrupt
        return real(self, index)

    monkeypatch.setattr(Trainer, "_step", step)


# dropout on the adapter path and in the model: the RNG state must be restored too
SETTINGS = ("train.max_steps=6", "lora.dropout=0.1", "train.micro_batch_size=3", "train.schedule=cosine",
            "train.warmup_steps=2", "train.checkpoint_every=2")  # fmt: skip


def test_resume_after_ctrl_c_equals_an_uninterrupted_run(make_recipe, tmp_path, monkeypatch):
    straight = train(make_recipe(*SETTINGS, "name=straight"), progress=False)
    expected = _records(straight.run_dir)

    _interrupt_at(monkeypatch, 3)  # Ctrl-C during step 4: steps 1-3 done, checkpoint at 2 and now at 3
    with pytest.raises(KeyboardInterrupt):
        train(make_recipe(*SETTINGS, "name=cut"), progress=False)
    run_dir = tmp_path / "runs" / "cut"
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["step-00000002", "step-00000003"]
    monkeypatch.undo()

    resumed = resume(run_dir, progress=False)
    got = _records(resumed.run_dir)
    assert [r["step"] for r in got] == [1, 2, 3, 4, 5, 6]
    for mine, theirs in zip(got, expected):
        assert mine["loss"] == pytest.approx(theirs["loss"], rel=1e-6, abs=1e-7)
        assert mine["lr"] == pytest.approx(theirs["lr"], rel=1e-12)
        assert mine["grad_norm"] == pytest.approx(theirs["grad_norm"], rel=1e-5)
    assert (run_dir / "adapter" / "adapter_model.safetensors").is_file()


def test_a_half_written_checkpoint_is_ignored_on_resume(make_recipe, tmp_path):
    first = train(make_recipe(*SETTINGS, "name=a"), progress=False)
    expected = _records(first.run_dir)
    checkpoints = first.run_dir / "checkpoints"
    # a kill during the write of step 6: its folder lacks the COMPLETE marker (and a temp folder lies around)
    (checkpoints / "step-00000006" / "COMPLETE").unlink()
    shutil.copytree(checkpoints / "step-00000004", checkpoints / ".step-00000006.tmp999")
    resumed = resume(first.run_dir, progress=False)
    got = _records(resumed.run_dir)
    assert [r["step"] for r in got] == [1, 2, 3, 4, 5, 6]
    assert [r["loss"] for r in got[4:]] == pytest.approx([r["loss"] for r in expected[4:]], rel=1e-6)


def test_resume_can_extend_a_finished_run(make_recipe):
    first = train(make_recipe("train.max_steps=2", "train.schedule=constant"), progress=False)
    more = resume(first.run_dir, ["train.max_steps=4"], progress=False)
    assert [r["step"] for r in _records(more.run_dir)] == [1, 2, 3, 4]


def test_resume_refuses_another_method_and_restarts_a_run_without_checkpoints(make_recipe, tmp_path):
    from loralab.errors import ConfigError

    first = train(make_recipe("train.max_steps=2"), progress=False)
    expected = _records(first.run_dir)
    with pytest.raises(ConfigError, match="method"):
        resume(first.run_dir, ["method=full", "lora=null"], progress=False)
    shutil.rmtree(first.run_dir / "checkpoints")
    (first.run_dir / "adapter" / "adapter_model.safetensors").unlink()
    again = resume(first.run_dir, progress=False)  # no checkpoint: a clean start from step 0, not an error
    got = _records(again.run_dir)
    assert [r["step"] for r in got] == [1, 2]
    assert [r["loss"] for r in got] == pytest.approx([r["loss"] for r in expected], rel=1e-6)
    assert (first.run_dir / "adapter" / "adapter_model.safetensors").is_file()


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(make_recipe, tmp_path, monkeypatch):
    from dataclasses import replace

    from loralab.train.objectives import SupervisedObjective

    real = SupervisedObjective.__call__
    calls = {"n": 0}

    def poisoned(self, model, batch):
        calls["n"] += 1
        out = real(self, model, batch)
        return replace(out, loss_sum=out.loss_sum * float("nan")) if calls["n"] == 3 else out

    monkeypatch.setattr(SupervisedObjective, "__call__", poisoned)
    with pytest.raises(TrainingDiverged, match=r"step 3: the loss is nan.*step-00000002"):
        train(make_recipe("train.max_steps=5", "train.checkpoint_every=1"), progress=False)
    run_dir = tmp_path / "runs" / "tiny"
    assert [p.name for p in sorted((run_dir / "checkpoints").iterdir())] == ["step-00000001", "step-00000002"]
    assert len(_records(run_dir)) == 2


def test_a_run_stopped_during_a_periodic_evaluation_makes_it_on_resume(make_recipe, tmp_path, data_file, monkeypatch):
    settings = (*SETTINGS[:1], "train.checkpoint_every=2", "eval.every=2", f"eval.tasks=[ppl:{data_file}]", "eval.limit=4",
                "eval.before=false", "eval.precision=fp32")  # fmt: skip
    straight = train(make_recipe(*settings, "name=straight"), progress=False)
    expected = json.loads((straight.run_dir / "eval" / "step-00000004.json").read_text())

    real = Trainer._evaluate

    def evaluate(self, label):
        if label == "step-00000004":
            raise KeyboardInterrupt  # Ctrl-C during the evaluation after step 4
        return real(self, label)

    monkeypatch.setattr(Trainer, "_evaluate", evaluate)
    with pytest.raises(KeyboardInterrupt):
        train(make_recipe(*settings, "name=cut"), progress=False)
    run_dir = tmp_path / "runs" / "cut"
    assert not (run_dir / "eval" / "step-00000004.json").exists()
    monkeypatch.setattr(Trainer, "_evaluate", real)
    resume(run_dir, progress=False)
    made = json.loads((run_dir / "eval" / "step-00000004.json").read_text())
    assert [r["value"] for r in made] == pytest.approx([r["value"] for r in expected], rel=1e-6)
    assert [r["loss"] for r in _records(run_dir)] == [r["loss"] for r in _records(straight.run_dir)]


def test_a_run_stopped_during_its_final_evaluation_is_not_finished_and_resume_completes_it(make_recipe, tmp_path, data_file, monkeypatch):
    from loralab.train.runs import RunFolder

    settings = ("train.max_steps=2", f"eval.tasks=[ppl:{data_file}]", "eval.limit=4", "eval.before=false", "eval.precision=fp32")
    real = Trainer._evaluate

    def evaluate(self, label):
        if label == "final":
            raise KeyboardInterrupt  # Ctrl-C during the final evaluation
        return real(self, label)

    monkeypatch.setattr(Trainer, "_evaluate", evaluate)
    with pytest.raises(KeyboardInterrupt):
        train(make_recipe(*settings, "name=cut"), progress=False)
    run = RunFolder(tmp_path / "runs" / "cut")
    assert not run.finished() and [step for step, _ in run.checkpoints()] == [2]  # a study would resume it, not skip it
    monkeypatch.setattr(Trainer, "_evaluate", real)
    resume(run.path, progress=False)
    assert run.finished() and (run.path / "eval" / "final.json").is_file() and len(_records(run.path)) == 2
