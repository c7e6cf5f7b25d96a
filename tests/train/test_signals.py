"""Real signals to real training processes: each stop leaves a whole checkpoint of the last
recorded step, exits 128 + signal with a message, and the run resumed to the end equals an
uninterrupted one bit for bit (uses benchmarks/faults.py, the fault-injection script)."""

import importlib.util
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("faults", ROOT / "benchmarks" / "faults.py")
faults = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(faults)

STEPS = 30


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reference")
    done = faults.run_to_end("train", str(faults.write_recipe(folder, STEPS, "reference")))
    assert done.returncode == 0, done.stdout + done.stderr
    return folder / "runs" / "reference"


def test_int_term_hup_and_kill_then_resume_equals_the_uninterrupted_run(tmp_path, reference):
    recipe = faults.write_recipe(tmp_path, STEPS, "cut")
    run = tmp_path / "runs" / "cut"
    process = faults.start("train", str(recipe))
    for number, signum in enumerate((signal.SIGINT, signal.SIGTERM, signal.SIGHUP)):
        out = faults.interrupt(process, run, signum, faults.recorded_steps(run) + 3, 0.0)
        name = signal.Signals(signum).name
        assert process.returncode == 128 + signum, out
        recorded = faults.recorded_steps(run)
        assert 0 < recorded < STEPS, out
        saved_now = f"stopped by {name} after step {recorded}; checkpoint step-{recorded:08d} saved"
        saved_before = f"stopped by {name}; step {recorded} is checkpointed"  # checkpoint_every: 3 had just written it
        assert saved_now in out or saved_before in out, out
        assert "Traceback" not in out
        assert faults.corrupted_checkpoints(run) == []
        assert (run / "checkpoints" / f"step-{recorded:08d}" / "COMPLETE").is_file()  # the last recorded step, not one more
        process = faults.start("train", "--resume", str(run))
    out = faults.interrupt(process, run, signal.SIGKILL, faults.recorded_steps(run) + 3, 0.0)
    assert process.returncode == -signal.SIGKILL
    assert faults.corrupted_checkpoints(run) == []
    done = faults.run_to_end("train", "--resume", str(run))
    assert done.returncode == 0, done.stdout + done.stderr
    assert faults.recorded_steps(run) == STEPS
    assert faults.same_run(run, reference)


def test_a_second_process_on_a_training_run_is_refused_and_the_first_goes_on(tmp_path):
    recipe = faults.write_recipe(tmp_path, 100_000, "busy")  # runs until stopped
    run = tmp_path / "runs" / "busy"
    process = faults.start("train", str(recipe))
    while faults.recorded_steps(run) < 2 and process.poll() is None:
        pass
    for args in (("train", "--resume", str(run)), ("train", str(recipe), "--force"), ("train", str(recipe))):
        other = faults.run_to_end(*args)
        assert other.returncode == 2, other.stdout + other.stderr
        assert f"is in use by process {process.pid}" in other.stderr or "already exists" in other.stderr, other.stderr
        assert "Traceback" not in other.stderr
    before = faults.recorded_steps(run)
    out = faults.interrupt(process, run, signal.SIGTERM, before + 2, 0.0)
    assert process.returncode == 128 + signal.SIGTERM, out
    assert faults.recorded_steps(run) > before  # it kept training while the others were refused
    assert faults.corrupted_checkpoints(run) == []


def test_the_fault_script_reports_no_corruption_and_equal_runs(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "faults.py"), "--cycles", "4", "--steps", "12", "--seed", "3"],
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "| 4 | 0 |" in done.stdout
