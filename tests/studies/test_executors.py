"""Study executors: ``--workers N`` subprocesses and Ray tasks give the in-process executor's results;
a killed study and a stopped ``--workers`` study resume where they were.

Trials run ``python -m loralab`` in subprocesses here, so this file takes tens of seconds; each
subprocess and each wait has a deadline, and a study process left behind is killed.
"""

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from study_recipes import write_base_recipe

from loralab.errors import ConfigError
from loralab.studies import load_study, plan, read_results, run_study
from loralab.studies.cli import study_main
from loralab.studies.executors import make_executor
from loralab.studies.executors import pool
from loralab.studies.executors.base import TrialJob
from loralab.studies.executors.pool import PoolExecutor, WorkerSlot, usable_cores, worker_slots
from loralab.studies.executors.subprocess_trial import TrialProcessResult, log_tail, trial_error
from loralab.train.runs import RunFolder

GRID = {"lora.r": [2, 4], "optimizer.lr": [1e-2, 3e-2]}
#: two trials of a few seconds each, a checkpoint after every step: killed or stopped mid-trial in tests
LONG = {"grid": {"lora.r": [2, 4]}, "overrides": {"train.max_steps": 24, "train.checkpoint_every": 1}}
DEADLINE_S = 240


@pytest.fixture(scope="module", autouse=True)
def _threads_of_a_worker():
    """This process, and the studies it starts, train with the threads of one of two workers (cores // 2),
    as ``--workers 2`` trials do: the same sums in the same order, so resumed runs match bit for bit."""
    threads, before, env = max(1, usable_cores() // 2), torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    yield
    torch.set_num_threads(before)
    if env is None:
        os.environ.pop("OMP_NUM_THREADS")
    else:
        os.environ["OMP_NUM_THREADS"] = env


@pytest.fixture(scope="module")
def base_recipe(tmp_path_factory):
    """The study tests' tiny-model recipe (module-wide: the in-process references are run once)."""
    shared = importlib.util.spec_from_file_location("shared_test_records", Path(__file__).parents[1] / "conftest.py")
    module = importlib.util.module_from_spec(shared)
    shared.loader.exec_module(module)  # tests/conftest.py by path: "conftest" may name another folder's
    RECORDS = module.RECORDS

    folder = tmp_path_factory.mktemp("executors")
    data_file = folder / "tiny.jsonl"
    data_file.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    return write_base_recipe(folder, data_file)


def _study(folder: Path, base_recipe: Path, name: str, **fields) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, "recipe": str(base_recipe), "output_dir": str(folder / "runs"), **fields}))
    return path


@pytest.fixture(scope="module")
def grid_reference(base_recipe, tmp_path_factory):
    """The 2×2 grid's study folder, run in this process one trial after another."""
    study = load_study(_study(tmp_path_factory.mktemp("grid-reference"), base_recipe, "grid", grid=GRID))
    run_study(study, progress=False)
    return study.folder


@pytest.fixture(scope="module")
def long_reference(base_recipe, tmp_path_factory):
    """The two longer trials' study folder, run in this process without interruption."""
    study = load_study(_study(tmp_path_factory.mktemp("long-reference"), base_recipe, "long", **LONG))
    run_study(study, progress=False)
    return study.folder


def _numbers(folder: Path) -> dict[tuple, dict[str, str]]:
    """results.csv by (trial, point, task, metric), less what depends on the clock or the machine."""
    return {(r["trial"], r["point"], r["task"], r["metric"]): {k: v for k, v in r.items() if k not in ("seconds", "peak_memory_mb", "status")}
            for r in read_results(folder / "results.csv")}  # fmt: skip


def assert_same_results(reference: Path, folder: Path) -> None:
    """Every trial of ``reference`` is in ``folder``, finished, with the same adapter and results, bit for bit
    (fp32, and the same number of threads: see ``_threads_of_a_worker``)."""
    expected, got = _numbers(reference), _numbers(folder)
    assert expected and set(expected) <= set(got)
    for key, row in expected.items():  # its own columns only: ``folder`` may have trials that vary more
        assert {k: got[key].get(k) for k in row} == row, key
    for trial in {key[0] for key in expected}:
        assert RunFolder.existing(folder / trial).finished()
        a = load_file(reference / trial / "adapter" / "adapter_model.safetensors")
        b = load_file(folder / trial / "adapter" / "adapter_model.safetensors")
        assert a.keys() == b.keys() and all(torch.equal(a[name], b[name]) for name in a), trial


def test_the_reference_trials_differ(grid_reference):
    """The comparisons below can fail: every trial of the grid ends somewhere else."""
    finals = {key[0]: row["value"] for key, row in _numbers(grid_reference).items() if key[1] == "final"}
    assert len(finals) == 4 and len(set(finals.values())) == 4


def test_workers_run_subprocesses_with_the_in_process_results(grid_reference, base_recipe, tmp_path, capsys):
    bad = [{"name": "bad-data", "overrides": {"data.path": str(tmp_path / "missing.jsonl")}}]
    path = _study(tmp_path, base_recipe, "grid", grid=GRID, trials=bad)
    study_main([str(path), "--workers", "2", "--no-progress"])
    folder = load_study(path).folder
    assert_same_results(grid_reference, folder)
    status = json.loads((folder / "status.json").read_text())
    assert [status[t]["status"] for t in status] == ["failed", "done", "done", "done", "done"]
    error = status["bad-data"]["error"]  # the trial's one-line error and its exit status
    assert "missing.jsonl" in error and error.endswith("(exit code 2)") and "\n" not in error
    assert sorted(p.name for p in (folder / "logs").iterdir()) == sorted(f"{t}.log" for t in status)
    assert "loralab: 2 steps" in (folder / "logs" / "r=2_lr=0.01.log").read_text()
    out = capsys.readouterr().out
    assert "(worker 1, " in out and "(worker 2, " in out and "1 failed" in out


def test_ray_tasks_give_the_in_process_results(grid_reference, base_recipe, tmp_path):
    import ray

    path = _study(tmp_path, base_recipe, "grid", grid=GRID)
    # two trials at a time, each with the threads of the in-process reference (Ray's CPUs are a count, not cores)
    ray.init(num_cpus=2 * torch.get_num_threads(), include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    try:
        study_main([str(path), "--executor", "ray", "--workers", "2", "--no-progress"])
    finally:
        ray.shutdown()
    folder = load_study(path).folder
    assert_same_results(grid_reference, folder)
    assert {s["status"] for s in json.loads((folder / "status.json").read_text()).values()} == {"done"}
    assert len(list((folder / "logs").glob("*.log"))) == 4 and not list((folder / "logs").glob(".stop-*"))


def _start_study(path: Path, log: Path, *args: str) -> subprocess.Popen:
    with open(log, "wb") as out:  # its own session: the test kills it and anything it started, never more
        return subprocess.Popen([sys.executable, "-m", "loralab", "study", str(path), "--no-progress", *args],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip


def _wait_until(condition, process: subprocess.Popen, log: Path, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"the study ended (exit {process.returncode}) before {what}:\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} after {DEADLINE_S} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)


def _kill_group(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def _checkpointed(run_dir: Path) -> int:
    """The newest complete checkpoint's step (0: none)."""
    found = RunFolder(run_dir).checkpoints() if (run_dir / "checkpoints").is_dir() else []
    return found[-1][0] if found else 0


def _metrics_lines(run_dir: Path) -> list[str]:
    path = run_dir / "metrics.jsonl"
    return path.read_text().splitlines() if path.is_file() else []


def test_a_killed_study_skips_finished_trials_and_resumes_the_interrupted_one(long_reference, base_recipe, tmp_path):
    path = _study(tmp_path, base_recipe, "long", **LONG)
    study = load_study(path)
    first, second = (study.folder / t.name for t in study.trials)
    log = tmp_path / "study.log"
    process = _start_study(path, log)
    try:
        _wait_until(lambda: _checkpointed(second) >= 2, process, log, "checkpoint of the second trial")
        os.killpg(process.pid, signal.SIGKILL)  # mid-trial, no chance to save anything
        process.wait(timeout=30)
    finally:
        _kill_group(process)
    assert RunFolder(first).finished() and not RunFolder(second).finished()
    assert [action for _, action, _ in plan(study)] == ["skip (finished)", "resume"]
    adapter = first / "adapter" / "adapter_model.safetensors"
    finished_at = adapter.stat().st_mtime_ns
    kept = _checkpointed(second)
    before = _metrics_lines(second)[:kept]  # their timings are this attempt's: a restart would rewrite them
    outcome = run_study(load_study(path), progress=False)
    assert outcome.status[first.name]["status"] == "done before" and outcome.status[second.name]["status"] == "done"
    assert adapter.stat().st_mtime_ns == finished_at
    steps = [json.loads(line)["step"] for line in _metrics_lines(second)]
    assert steps == list(range(1, 25)) and _metrics_lines(second)[:kept] == before
    assert_same_results(long_reference, study.folder)


def test_sigterm_stops_the_workers_trials_at_a_checkpoint_and_a_rerun_finishes_them(long_reference, base_recipe, tmp_path):
    path = _study(tmp_path, base_recipe, "long", **LONG)
    study = load_study(path)
    runs = [study.folder / t.name for t in study.trials]
    log = tmp_path / "study.log"
    process = _start_study(path, log, "--workers", "2")
    try:
        _wait_until(lambda: all(_checkpointed(run) >= 1 for run in runs), process, log, "checkpoint of both trials")
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=DEADLINE_S)
    finally:
        _kill_group(process)
    output = log.read_text()
    assert code == 128 + signal.SIGTERM, output
    status = json.loads((study.folder / "status.json").read_text())
    stopped = [run for run in runs if not RunFolder(run).finished()]  # both, unless one was far ahead of the other
    waiting = re.search(r"stopping: waiting for (\d+) running trials? to save", output)
    # a trial may finish its last step after the signal came: then more were waited for than are left unfinished
    assert stopped and waiting and int(waiting.group(1)) >= len(stopped), output
    kept = {}
    for run in runs:
        if run not in stopped:  # it wrote its final adapter before the signal reached it: done, whatever it exited with
            assert status[run.name]["status"] == "done"
            continue
        trial_log = (study.folder / "logs" / f"{run.name}.log").read_text()
        assert "stopped by SIGTERM" in trial_log, trial_log[-2000:]
        assert status[run.name]["status"] == "planned"  # stopped, not failed
        kept[run] = _checkpointed(run)
        assert kept[run] == len(_metrics_lines(run)) >= 1  # every recorded step is in the checkpoint it left
    before = {run: _metrics_lines(run) for run in stopped}
    outcome = run_study(load_study(path), progress=False)
    assert {outcome.status[run.name]["status"] for run in stopped} == {"done"}
    for run in stopped:
        assert _metrics_lines(run)[: kept[run]] == before[run]  # resumed, not restarted
    assert_same_results(long_reference, study.folder)


# -- the parts, without training -----------------------------------------------------------------
def test_a_trial_stopped_after_its_final_output_counts_as_done(grid_reference, tmp_path, monkeypatch, capsys):
    """A stop that reaches a trial after it wrote its final adapter: the study records it done (a rerun skips it)."""
    finished = next(p for p in grid_reference.iterdir() if (p / "adapter").is_dir())
    jobs = [TrialJob(name, tmp_path / "recipe.yaml", (), run_dir, False)
            for name, run_dir in (("finished", finished), ("cut", tmp_path / "cut"))]  # fmt: skip
    stopped = TrialProcessResult("loralab: stopped by SIGTERM (exit code 143)", 2.5, "", True)
    monkeypatch.setattr(pool, "run_trial_process", lambda *args, **kwargs: stopped)
    done = []
    PoolExecutor(1, [WorkerSlot("worker 1", {})]).run(jobs, lambda job, error, seconds: done.append((job.name, error, seconds)))
    assert done == [("finished", None, 2.5)]
    out = capsys.readouterr().out
    assert "trial finished finished in 2.5 s" in out and "trial cut stopped; running the study again resumes it" in out


def test_worker_slots_one_gpu_each_or_a_share_of_the_cores():
    assert [s.env for s in worker_slots(2, gpus=["3", "5", "6"])] == [{"CUDA_VISIBLE_DEVICES": "3"}, {"CUDA_VISIBLE_DEVICES": "5"}]
    with pytest.raises(ConfigError, match=r"^--workers 3 is more than the 2 GPUs of this machine \(one trial per GPU\)$"):
        worker_slots(3, gpus=["0", "1"])
    assert [s.env["OMP_NUM_THREADS"] for s in worker_slots(3, gpus=[], cores=16)] == ["5"] * 3
    assert [s.env["OMP_NUM_THREADS"] for s in worker_slots(4, gpus=[], cores=2)] == ["1"] * 4


@pytest.mark.parametrize("args, message", [
    (("local", 0), "--workers must be at least 1, got 0"),
    (("slurm", 2), "unknown executor 'slurm'; choose one of local, ray"),
    (("local", 2, "10.0.0.1:6379"), "--ray-address is for --executor ray"),
])  # fmt: skip
def test_executor_mistakes_are_one_line_errors(args, message):
    with pytest.raises(ConfigError) as err:
        make_executor(*args)
    assert str(err.value) == message


def test_local_workers_choose_the_pool_and_a_missing_ray_says_how_to_install_it(monkeypatch):
    assert isinstance(make_executor("local", 2), PoolExecutor)
    assert type(make_executor("local", 1)).__name__ == type(make_executor()).__name__ == "InProcessExecutor"
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    with pytest.raises(ConfigError, match=r"^--executor ray needs Ray, which is not installed: pip install 'loralab\[ray\]'"):
        make_executor("ray")


def test_a_failed_trials_error_is_its_last_line_and_exit_status(tmp_path):
    log = tmp_path / "t.log"
    log.write_bytes(b"earlier attempt\n# header\nloading\rdone\n\nloralab: error: data file 'x' not found\n\n")
    tail = log_tail(str(log), offset=len(b"earlier attempt\n"))
    assert tail == "# header\ndone\nloralab: error: data file 'x' not found"
    assert trial_error(tail, 2) == "loralab: error: data file 'x' not found (exit code 2)"
    assert trial_error("", -9) == "killed by SIGKILL"
