"""train.report_to: every metrics.jsonl record and every evaluation reach the trackers, which are closed
however the run ends and continue at the right step on resume. TensorBoard is read back for real."""

import json
import shutil
import sys

import pytest

from loralab.errors import ConfigError
from loralab.train import trackers as tracking
from loralab.train.trainer import Trainer, resume, train

EVAL = ("eval.tasks=[source-ppl, source-kl]", "eval.limit=1", "eval.every=2", "eval.settings={window: 16}")


def metrics(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def evaluations(run_dir) -> dict[int, dict[str, float]]:
    """{step: {"eval/<task>/<metric>": value}} from the eval/*.json files (before = step 0)."""
    out = {}
    for path in (run_dir / "eval").glob("*.json"):
        step = 0 if path.stem == "before" else 4 if path.stem == "final" else int(path.stem.split("-")[1])
        out[step] = {f"eval/{r['task']}/{r['metric']}": r["value"] for r in json.loads(path.read_text())}
    return out


class Recorder(tracking.Tracker):
    """A tracker that keeps what it is given, in a list shared by every instance."""

    name = "recorder"
    package = "recorder-package"
    module = "json"  # any importable module
    calls: list = []

    def __init__(self, run):
        self.calls.append(("open", run.start, run.resume))

    def log(self, values, step):
        self.calls.append(("log", step, dict(values)))

    def close(self, status):
        self.calls.append(("close", status))


@pytest.fixture
def recorder(monkeypatch):
    monkeypatch.setitem(tracking.TRACKERS, "recorder", Recorder)
    Recorder.calls = []
    return Recorder.calls


# -- the recipe ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [("[neptune]", "train.report_to: unknown tracker 'neptune'; choose from tensorboard, wandb, mlflow"),
     ("[tensorboard, tensorboard]", "train.report_to: a tracker is named twice"),
     ("tensorboard", "train.report_to: expected a list")],  # fmt: skip
)
def test_report_to_names_are_checked(make_recipe, value, message):
    with pytest.raises(ConfigError, match=message):
        make_recipe(f"train.report_to={value}")


def test_a_missing_package_is_one_line_before_anything_loads(make_recipe, monkeypatch):
    recipe = make_recipe("train.report_to=[tensorboard]")
    assert recipe.train.report_to == ("tensorboard",)
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    with pytest.raises(ConfigError) as caught:
        train(recipe, progress=False)
    assert str(caught.value) == ("train.report_to: tensorboard needs the 'tensorboard' package, which is not "
                                 "installed: pip install tensorboard")  # fmt: skip
    assert not recipe.run_dir.exists()


def test_no_trackers_by_default(make_recipe):
    assert make_recipe().train.report_to == ()


# -- what trackers receive, and when they are closed ----------------------------------------------------


def test_every_record_and_evaluation_is_forwarded(make_recipe, recorder):
    result = train(make_recipe("train.report_to=[recorder]", *EVAL), progress=False)
    records = metrics(result.run_dir)
    assert recorder[0] == ("open", 0, False) and recorder[-1] == ("close", "finished")
    logged = [call for call in recorder if call[0] == "log"]
    train_logs = [(step, values) for _, step, values in logged if next(iter(values)).startswith("train/")]
    assert [step for step, _ in train_logs] == [r["step"] for r in records] == [1, 2, 3, 4]
    for (_, values), record in zip(train_logs, records):
        assert values == {f"train/{k}": float(v) for k, v in record.items() if k != "step"}
    eval_logs: dict[int, dict] = {}
    for _, step, values in logged:
        if next(iter(values)).startswith("eval/"):
            eval_logs.setdefault(step, {}).update(values)
    assert eval_logs == evaluations(result.run_dir)  # before (0), step 2, final (4); base perplexity completed at 0
    assert set(eval_logs) == {0, 2, 4} and "eval/source-ppl/perplexity" in eval_logs[0]


def test_trackers_are_closed_on_failure_and_on_stop_and_resume_after_the_checkpoint(make_recipe, recorder, monkeypatch):
    recipe = make_recipe("train.report_to=[recorder]", "train.checkpoint_every=1")
    real_step = Trainer._step

    def failing(self, step):
        if step == 2:
            raise RuntimeError("boom")
        return real_step(self, step)

    monkeypatch.setattr(Trainer, "_step", failing)
    with pytest.raises(RuntimeError, match="boom"):
        train(recipe, progress=False)
    assert recorder[-1] == ("close", "failed")

    def stopped(self, step):
        if step == 3:
            raise KeyboardInterrupt
        return real_step(self, step)

    monkeypatch.setattr(Trainer, "_step", stopped)
    recorder.clear()
    with pytest.raises(KeyboardInterrupt):
        resume(recipe.run_dir, progress=False)
    assert recorder[0] == ("open", 2, True) and recorder[-1] == ("close", "stopped")
    assert [step for kind, step, *_ in recorder[1:-1] if kind == "log"] == [3]

    monkeypatch.setattr(Trainer, "_step", real_step)
    recorder.clear()
    resume(recipe.run_dir, progress=False)
    assert recorder[0] == ("open", 3, True) and recorder[-1] == ("close", "finished")
    assert [step for kind, step, *_ in recorder[1:-1] if kind == "log"] == [4]


def test_a_failing_tracker_is_dropped_and_training_goes_on(make_recipe, recorder, monkeypatch, capsys):
    def broken(self, values, step):
        if step == 2:
            raise OSError("disk on fire")
        Recorder.calls.append(("log", step, values))

    monkeypatch.setattr(Recorder, "log", broken)
    result = train(make_recipe("train.report_to=[recorder]"), progress=False)
    assert len(metrics(result.run_dir)) == 4
    assert [step for kind, step, *_ in recorder if kind == "log"] == [1]
    assert "recorder failed (OSError: disk on fire); no longer reporting to it" in capsys.readouterr().out


# -- TensorBoard, for real -----------------------------------------------------------------------------


def scalars(run_dir) -> dict[str, list[tuple[int, float]]]:
    """Every scalar series in <run>/tensorboard/, as TensorBoard itself reads it."""
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def check_against_run_files(run_dir) -> None:
    found = scalars(run_dir)
    records = metrics(run_dir)
    fields = [key for key in records[0] if key != "step"]
    assert {f"train/{key}" for key in fields} <= set(found)
    for key in fields:
        expected = [(r["step"], pytest.approx(r[key], rel=1e-6, abs=1e-30)) for r in records]
        assert found[f"train/{key}"] == expected, key  # float32 in the event file
    expected_eval: dict[str, list] = {}
    for step, values in sorted(evaluations(run_dir).items()):
        for tag, value in values.items():
            expected_eval.setdefault(tag, []).append((step, pytest.approx(value, rel=1e-6)))
    # by step: the base's perplexity comes with the final KL pass, so it is logged (at step 0) last
    assert {tag: sorted(series) for tag, series in found.items() if tag.startswith("eval/")} == expected_eval


def test_tensorboard_event_file_matches_metrics_and_evaluations(make_recipe):
    pytest.importorskip("tensorboard")
    result = train(make_recipe("train.report_to=[tensorboard]", "train.checkpoint_every=2", *EVAL), progress=False)
    check_against_run_files(result.run_dir)
    assert sorted(step for step, _ in scalars(result.run_dir)["eval/source-ppl/perplexity"]) == [0, 2, 4]

    # An interrupted session had logged steps 3-4 and the final evaluation; resumed from step 2, those are
    # logged again, and TensorBoard must show each step once (purge_step), still equal to the run's files.
    shutil.rmtree(result.run_dir / "checkpoints" / "step-00000004")
    resume(result.run_dir, progress=False)
    assert len(list((result.run_dir / "tensorboard").glob("events.out.tfevents.*"))) == 2
    check_against_run_files(result.run_dir)


# -- wandb and MLflow, where installed (not test dependencies) -------------------------------------------


def test_mlflow_local_store_gets_every_metric_and_reopens_on_resume(make_recipe, tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())  # a local file store
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 refuses it otherwise (sqlite needs sqlalchemy)
    result = train(make_recipe("train.report_to=[mlflow]", "train.checkpoint_every=2", *EVAL), progress=False)
    run_id = json.loads((result.run_dir / "trackers.json").read_text())["mlflow"]["run_id"]
    client = MlflowClient()
    history = client.get_metric_history(run_id, "train/loss")
    assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == [
        (r["step"], pytest.approx(r["loss"])) for r in metrics(result.run_dir)
    ]
    shutil.rmtree(result.run_dir / "checkpoints" / "step-00000004")
    resume(result.run_dir, progress=False)  # the same MLflow run: steps 3 and 4 logged again, with the same values
    assert json.loads((result.run_dir / "trackers.json").read_text())["mlflow"]["run_id"] == run_id
    history = client.get_metric_history(run_id, "train/loss")
    assert {(m.step, round(m.value, 5)) for m in history} == {(r["step"], round(r["loss"], 5)) for r in metrics(result.run_dir)}
    assert client.get_run(run_id).info.status == "FINISHED"
    assert client.get_run(run_id).data.params["lora.r"] == "4"
    evaluated = client.get_metric_history(run_id, "eval/source-ppl/perplexity")  # the final one twice: before and after resuming
    assert {(m.step, round(m.value, 3)) for m in evaluated} == {
        (step, round(values["eval/source-ppl/perplexity"], 3)) for step, values in evaluations(result.run_dir).items()
    }


def test_wandb_offline_run_is_written_and_reopened_on_resume(make_recipe, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    result = train(make_recipe("train.report_to=[wandb]", "train.checkpoint_every=2"), progress=False)
    run_id = json.loads((result.run_dir / "trackers.json").read_text())["wandb"]["id"]
    assert list((result.run_dir / "wandb").glob(f"offline-run-*-{run_id}"))
    shutil.rmtree(result.run_dir / "checkpoints" / "step-00000004")
    resume(result.run_dir, progress=False)
    assert json.loads((result.run_dir / "trackers.json").read_text())["wandb"]["id"] == run_id


def test_trackio_local_project_gets_every_metric(make_recipe, tmp_path, monkeypatch):
    if "trackio" in sys.modules:
        pytest.skip("trackio is imported already: its folder (TRACKIO_DIR, read on import) cannot be redirected")
    monkeypatch.setenv("TRACKIO_DIR", str(tmp_path / "trackio"))
    pytest.importorskip("trackio")
    from trackio.sqlite_storage import SQLiteStorage

    monkeypatch.setenv("TRACKIO_PROJECT", "loralab-tests")
    result = train(make_recipe("train.report_to=[trackio]"), progress=False)
    logs = SQLiteStorage.get_logs("loralab-tests", "tiny")
    assert [(log["step"], log["train/loss"]) for log in logs] == [
        (r["step"], pytest.approx(r["loss"])) for r in metrics(result.run_dir)
    ]
