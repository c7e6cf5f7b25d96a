"""Mistakes and failures of distributed runs: one line each, never a hang or a stack trace."""

import time

import pytest
from distributed_runs import loralab

from loralab.errors import ConfigError
from loralab.process import ProcessRole
from loralab.train.batches import BatchPlan
from loralab.train.cli import train_main
from loralab.train.distributed.checks import check_world_fits


def test_a_strategy_the_method_cannot_use_is_a_config_error(make_recipe):
    with pytest.raises(ConfigError, match="distributed.strategy: method qlora cannot use fsdp; it can use ddp"):
        make_recipe("method=qlora", "distributed.strategy=fsdp")  # FSDP cannot shard the 4-bit base
    with pytest.raises(ConfigError, match="distributed.timeout_minutes"):
        make_recipe("distributed.timeout_minutes=0")
    assert make_recipe("method=full", "~lora", "distributed.strategy=fsdp").distributed.strategy == "fsdp"
    assert make_recipe("distributed.strategy=fsdp").distributed.strategy == "fsdp"  # LoRA too


def test_a_single_process_recipe_is_written_as_before(make_recipe):
    assert "distributed" not in make_recipe().to_yaml()
    assert "distributed:\n  strategy: ddp" in make_recipe("distributed.timeout_minutes=5").to_yaml()


def test_nccl_on_a_machine_without_gpus_fails_before_launching(recipe_file, tmp_path):
    path = recipe_file("distributed.backend=nccl")
    with pytest.raises(ConfigError, match="distributed.backend: nccl needs CUDA GPUs"):
        train_main([str(path), "--nproc", "2"])
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(("examples", "micro", "world", "fits"), [
    (8, 2, 2, True),   # 2 full micro-batches of 4
    (7, 2, 2, True),   # the last holds 3: rank 0 takes 2, rank 1 takes 1
    (8, 3, 2, False),  # the last holds 2: rank 1 gets none
    (6, 2, 4, False),  # the last holds 6 - 0: ranks 3 get none
    (1, 1, 2, False),  # fewer examples than processes
])  # fmt: skip
def test_a_world_size_that_leaves_a_rank_without_examples_is_refused(examples, micro, world, fits):
    plan = BatchPlan(examples, micro, 1, role=ProcessRole(0, world))
    if fits:
        check_world_fits(plan)
        assert all(plan.micro_batch(i) for i in range(plan.micro_batches_per_epoch))
        return
    with pytest.raises(ConfigError, match="process"):
        check_world_fits(plan)
    if examples >= world:
        last = BatchPlan(examples, micro, 1, role=ProcessRole(world - 1, world))
        assert not last.micro_batch(last.micro_batches_per_epoch - 1)  # the check is right: that rank would get nothing


def test_a_rank_that_dies_stops_the_others_with_a_message(recipe_file):
    path = recipe_file("train.micro_batch_size=2", "train.max_steps=6")
    begin = time.monotonic()
    done = loralab("train", str(path), "--nproc", "2", "--no-progress", timeout=150, LORALAB_TEST_DIE="1:2")
    assert done.returncode != 0
    assert "loralab: error: rank 0 " in done.stderr and "rank 1 was killed by SIGKILL" in done.stderr, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert time.monotonic() - begin < 120


@pytest.mark.parametrize(("local_rank", "error", "said"), [
    ("0", "ConfigError", "loralab: error: train.lr: unknown key"),
    ("1", "ConfigError", ""),  # rank 0 of this machine says it (and torchrun stops this one)
    ("1", "RankFailure", "loralab: error: rank 1: another rank died"),
    ("1", "TrainingDiverged", "loralab: error: rank 1: the loss is nan"),
])  # fmt: skip
def test_a_mistake_every_rank_meets_is_said_once_per_machine(local_rank, error, said, monkeypatch, capsys):
    from loralab import cli
    from loralab.train.distributed.setup import RankFailure
    from loralab.train.trainer import TrainingDiverged

    errors = {"ConfigError": ConfigError("train.lr: unknown key"), "RankFailure": RankFailure("rank 1: another rank died"),
              "TrainingDiverged": TrainingDiverged("the loss is nan")}  # fmt: skip

    def fail(argv):
        raise errors[error]

    def stopped_by_torchrun(seconds):
        raise KeyboardInterrupt

    monkeypatch.setitem(cli.COMMANDS, "train", (fail, "fails"))
    monkeypatch.setattr("time.sleep", stopped_by_torchrun)  # rank 0 failed alike: torchrun stops this rank
    monkeypatch.setenv("LOCAL_RANK", local_rank)
    monkeypatch.setenv("RANK", local_rank)
    assert cli.main(["train", "r.yaml"]) == 2
    assert capsys.readouterr().err.strip() == said


def test_torchrun_ranks_say_a_recipe_mistake_once(recipe_file):
    from distributed_runs import torchrun

    done = torchrun("train", str(recipe_file()), "train.no_such_key=1")
    assert done.returncode != 0
    assert done.stderr.count("loralab: error:") == 1 and "no_such_key" in done.stderr, done.stderr[-3000:]


def test_a_torchrun_rank_leaves_without_the_interpreter_teardown():
    """Gloo's threads torn down during finalisation can abort a rank after a clean stop: ranks skip it (os._exit)."""
    import subprocess
    import sys

    code = ("import atexit, sys; atexit.register(lambda: print('finalised', flush=True)); "
            "sys.argv = ['loralab', '--version']; from loralab.cli import run; run()")  # fmt: skip
    for env, finalised in (({"LOCAL_RANK": "0", "RANK": "0"}, False), ({}, True)):
        environ = {k: v for k, v in __import__("os").environ.items() if k not in ("LOCAL_RANK", "RANK", "TORCHELASTIC_RUN_ID")}
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env={**environ, **env})
        assert done.returncode == 0 and done.stdout.startswith("loralab "), done.stderr
        assert ("finalised" in done.stdout) is finalised


def test_a_rank_whose_rank_0_did_not_fail_says_the_mistake_after_waiting(monkeypatch, capsys):
    from loralab import cli

    waited = []

    def fail(argv):
        raise ConfigError("data.path: /data/x.jsonl does not exist")  # e.g. a file missing on this machine only

    monkeypatch.setitem(cli.COMMANDS, "train", (fail, "fails"))
    monkeypatch.setattr("time.sleep", waited.append)  # the wait ends without a stop from torchrun
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("RANK", "3")
    assert cli.main(["train", "r.yaml"]) == 2
    assert waited == [cli.SAME_MISTAKE_SECONDS]
    assert capsys.readouterr().err.strip() == "loralab: error: data.path: /data/x.jsonl does not exist"


def test_a_rank_already_stopped_by_torchrun_does_not_wait_or_speak(monkeypatch, capsys):
    """torchrun's SIGTERM may come while the rank imports, where the Stopped it raises is swallowed: noted anyway."""
    from loralab import cli, stops

    def fail(argv):
        raise ConfigError("train.lr: unknown key")

    monkeypatch.setitem(cli.COMMANDS, "train", (fail, "fails"))
    monkeypatch.setattr(stops, "received", [15])
    monkeypatch.setattr("time.sleep", lambda seconds: pytest.fail("waited"))
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("RANK", "1")
    assert cli.main(["train", "r.yaml"]) == 2
    assert capsys.readouterr().err == ""
