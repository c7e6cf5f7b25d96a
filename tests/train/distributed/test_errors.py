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
