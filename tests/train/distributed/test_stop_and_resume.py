"""SIGTERM to one rank of ``loralab train --nproc 2``: both ranks stop after the same step, rank 0 checkpoints it;
the run resumes on one process (micro-batch 4 = 2 × 2) with the same data order and ends as an uninterrupted run.
And ``loralab train --nproc`` passes its signals on to torchrun."""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from distributed_runs import SETTINGS, adapter, environment, records

from loralab.errors import ConfigError
from loralab.train.trainer import resume, train

STEPS = ("train.max_steps=8", "train.checkpoint_every=3")


def test_sigterm_to_one_rank_stops_all_at_one_step_and_the_run_resumes_on_one_process(recipe_file, make_recipe, tmp_path):
    path = recipe_file("name=cut", "train.micro_batch_size=2", *STEPS)
    run_dir = tmp_path / "runs" / "cut"
    command = [sys.executable, "-m", "loralab", "train", str(path), "--nproc", "2", "--no-progress"]
    launcher = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=environment(LORALAB_TEST_STEP_SECONDS="0.5", LORALAB_TEST_PIDS=str(tmp_path)))  # fmt: skip
    try:
        deadline = time.monotonic() + 150
        while not ((run_dir / "metrics.jsonl").is_file() and len(records(run_dir)) >= 4):  # past checkpoint 3
            assert launcher.poll() is None and time.monotonic() < deadline, launcher.communicate(timeout=30)
            time.sleep(0.05)
        os.kill(int((tmp_path / "rank-1.pid").read_text()), signal.SIGTERM)  # rank 1 alone, as a scheduler might
        out, err = launcher.communicate(timeout=90)
    finally:
        launcher.kill()
    assert launcher.returncode == 128 + signal.SIGTERM, err[-3000:]
    done = len(records(run_dir))
    assert 4 <= done < 8
    assert f"stopped by SIGTERM after step {done}; checkpoint step-{done:08d} saved" in out, out[-2000:]
    assert "Traceback" not in err, err[-3000:]
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["step-00000003", f"step-{done:08d}"]

    # one process needs micro-batches of 4 to see what 2 × 2 saw: said in one line, nothing written
    with pytest.raises(ConfigError, match="train.micro_batch_size=4"):
        resume(run_dir, progress=False)
    resumed = resume(run_dir, ["train.micro_batch_size=4"], progress=False)

    straight = train(make_recipe(*SETTINGS, *STEPS, "name=straight", "train.micro_batch_size=4"), progress=False)
    got, expected = records(run_dir), records(straight.run_dir)
    assert [r["step"] for r in got] == list(range(1, 9))
    for mine, theirs in zip(got, expected):
        assert mine["labelled_tokens"] == theirs["labelled_tokens"]  # the same examples in each step
        assert mine["loss"] == pytest.approx(theirs["loss"], rel=1e-4)
    assert resumed.steps == 8
    for key, value in adapter(straight.run_dir).items():
        torch.testing.assert_close(adapter(run_dir)[key], value, rtol=1e-3, atol=1e-5)


def test_loralab_train_nproc_passes_its_signals_on(monkeypatch):
    """The launcher forwards SIGTERM to its child (here a stand-in for torchrun) and returns its status."""
    import threading

    from loralab.train.distributed import launch

    child = "import signal, sys, time; signal.signal(signal.SIGTERM, lambda *a: sys.exit(143)); print('up', flush=True); time.sleep(60)"
    real_popen = subprocess.Popen
    started = threading.Event()

    def popen(command, **kwargs):
        process = real_popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True, **kwargs)
        threading.Thread(target=lambda: (process.stdout.readline(), started.set()), daemon=True).start()
        return process

    monkeypatch.setattr(launch.subprocess, "Popen", popen)
    threading.Thread(target=lambda: started.wait(30) and (time.sleep(0.3), os.kill(os.getpid(), signal.SIGTERM)),
                     daemon=True).start()  # fmt: skip (after launch() installed its handlers)
    begin = time.monotonic()
    assert launch.launch(2, ["recipe.yaml"]) == 143
    assert time.monotonic() - begin < 30


def test_a_two_rank_run_with_dropout_resumed_on_two_ranks_equals_an_uninterrupted_one(recipe_file, tmp_path):
    from distributed_runs import loralab

    dropout = ("lora.dropout=0.2", "train.max_steps=4", "train.checkpoint_every=2", "train.micro_batch_size=2")
    straight = loralab("train", str(recipe_file("name=straight", *dropout)), "--nproc", "2", "--no-progress", timeout=150)
    assert straight.returncode == 0, straight.stderr[-3000:]
    half = loralab("train", str(recipe_file("name=half", *dropout[:-3], "train.max_steps=2", *dropout[-2:])),
                   "--nproc", "2", "--no-progress", timeout=150)  # fmt: skip
    assert half.returncode == 0, half.stderr[-3000:]
    more = loralab("train", "--resume", str(tmp_path / "runs" / "half"), "train.max_steps=4", "--nproc", "2", "--no-progress", timeout=150)
    assert more.returncode == 0, more.stderr[-3000:]
    got, expected = records(tmp_path / "runs" / "half"), records(tmp_path / "runs" / "straight")
    assert [r["loss"] for r in got] == pytest.approx([r["loss"] for r in expected], rel=1e-6)  # rank 1's masks too
    for key, value in adapter(tmp_path / "runs" / "straight").items():
        torch.testing.assert_close(adapter(tmp_path / "runs" / "half")[key], value, rtol=1e-5, atol=1e-7)
