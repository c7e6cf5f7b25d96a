"""FSDP2 (fully_shard) full fine-tuning over 2 ranks (Gloo, CPU) against one process with micro-batches twice as large;
its sharded checkpoint (torch.distributed.checkpoint) resumed by one process; the model consolidated by rank 0."""

import json

import pytest
import torch
from distributed_runs import SETTINGS, adapter, files, records, torchrun
from safetensors.torch import load_file

from loralab.train.trainer import resume, train

FULL = ("method=full", "~lora", "optimizer.lr=1e-3", "train.checkpoint_every=2")
#: under FSDP every rank runs each evaluation on the sharded model (a frozen unsharded copy is KL's reference)
EVAL = ("eval.tasks=[arith, source-kl]", "eval.limit=2", "eval.before=false", "eval.precision=fp32",
        "eval.settings={max_new_tokens: 4}")  # fmt: skip


def _weights(run_dir):
    return load_file(str(run_dir / "model" / "model.safetensors"))


def test_fsdp_on_two_ranks_equals_one_process_and_its_sharded_checkpoint_resumes_on_one(recipe_file, make_recipe, tmp_path):
    path = recipe_file(*FULL, *EVAL, "name=two", "train.micro_batch_size=2", "distributed.strategy=fsdp")
    done = torchrun("train", str(path), "--no-progress")
    assert done.returncode == 0, done.stderr[-3000:]
    two_dir = tmp_path / "runs" / "two"
    one = train(make_recipe(*SETTINGS, *FULL, *EVAL, "name=one", "train.micro_batch_size=4"), progress=False)

    mine, theirs = records(two_dir), records(one.run_dir)
    assert [r["step"] for r in mine] == [1, 2, 3, 4]
    for a, b in zip(mine, theirs):
        assert a["labelled_tokens"] == b["labelled_tokens"]
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
        assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-4)

    # rank 0 consolidated the sharded weights into one Hugging Face folder, equal to the one process's
    got, expected = _weights(two_dir), _weights(one.run_dir)
    assert got.keys() == expected.keys()
    assert theirs[-1]["loss"] < theirs[0]["loss"] - 0.1  # it trained
    for key in expected:
        # Adam moves each weight by up to lr = 1e-3 a step, by m/√v: where a gradient entry is near 0, rounding
        # (a sum over 2 ranks in another order) changes that ratio; 2e-5 is 2% of one step
        torch.testing.assert_close(got[key], expected[key], rtol=1e-4, atol=2e-5)
    assert sorted(p.name for p in (two_dir / "checkpoints" / "step-00000004").iterdir()) == ["COMPLETE", "sharded", "state.pt"]
    got, expected = (json.loads((d / "eval" / "final.json").read_text()) for d in (two_dir, one.run_dir))
    assert [(r["task"], r["metric"]) for r in got] == [(r["task"], r["metric"]) for r in expected]
    assert {r["task"] for r in got} == {"arith", "source-kl"} and got[-1]["value"] > 0  # KL to the base: it moved
    for a, b in zip(got, expected):
        assert a["value"] == pytest.approx(b["value"], rel=1e-3, abs=1e-6)
    assert [f for f in files(two_dir) if not f.startswith("checkpoints")] == [f for f in files(one.run_dir) if not f.startswith("checkpoints")]

    # the sharded checkpoint of step 4, read by one process (micro-batch 4 = 2 × 2), continues like the one-process run
    resume(two_dir, ["train.micro_batch_size=4", "train.max_steps=6", "eval.tasks=[]"], progress=False)
    longer = train(make_recipe(*SETTINGS, *FULL, "name=longer", "train.micro_batch_size=4", "train.max_steps=6"), progress=False)
    for a, b in zip(records(two_dir), records(longer.run_dir)):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
    assert len(records(two_dir)) == 6
    # (compared in the step-6 checkpoints: a resumed finished full run keeps its first model/ folder, see atomic_save)
    got, expected = (load_file(str(d / "checkpoints" / "step-00000006" / "tensors.safetensors")) for d in (two_dir, longer.run_dir))
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        torch.testing.assert_close(got[key], value, rtol=1e-4, atol=2e-5)


def test_lora_under_fsdp_equals_one_process_and_its_checkpoint_holds_only_the_adapter(recipe_file, make_recipe, tmp_path):
    """The frozen base is sharded too (1/W per rank, no gradients); checkpoints and the final adapter hold only
    trainable tensors; a checkpoint of 2 ranks resumes on 1 process (2 × 2 → 1 × 4)."""
    from torch.distributed.checkpoint import FileSystemReader

    path = recipe_file("name=two", "train.micro_batch_size=2", "train.checkpoint_every=2", "distributed.strategy=fsdp")
    done = torchrun("train", str(path), "--no-progress")
    assert done.returncode == 0, done.stderr[-3000:]
    two_dir = tmp_path / "runs" / "two"
    one = train(make_recipe(*SETTINGS, "name=one", "train.micro_batch_size=4", "train.checkpoint_every=2"), progress=False)
    for a, b in zip(records(two_dir), records(one.run_dir), strict=True):
        assert a["labelled_tokens"] == b["labelled_tokens"]
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
    got, expected = adapter(two_dir), adapter(one.run_dir)
    assert got.keys() == expected.keys() and any(v.abs().max() > 1e-3 for k, v in expected.items() if "lora_B" in k)
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=1e-4, atol=2e-5)

    saved = FileSystemReader(str(two_dir / "checkpoints" / "step-00000004" / "sharded")).read_metadata().state_dict_metadata
    weights = {k for k in saved if k.startswith("model.")}
    assert weights and all("lora_" in k for k in weights)  # the adapter only, not the frozen base

    resume(two_dir, ["train.micro_batch_size=4", "train.max_steps=6"], progress=False)
    longer = train(make_recipe(*SETTINGS, "name=longer", "train.micro_batch_size=4", "train.max_steps=6"), progress=False)
    for a, b in zip(records(two_dir), records(longer.run_dir), strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
    for key, value in adapter(longer.run_dir).items():
        torch.testing.assert_close(adapter(two_dir)[key], value, rtol=1e-4, atol=2e-5)


def test_a_damaged_sharded_checkpoint_is_set_aside_and_the_previous_one_resumes(recipe_file, tmp_path, capsys):
    path = recipe_file("name=two", "train.micro_batch_size=2", "train.checkpoint_every=2", "distributed.strategy=fsdp")
    done = torchrun("train", str(path), "--no-progress")
    assert done.returncode == 0, done.stderr[-3000:]
    two_dir = tmp_path / "runs" / "two"
    straight, final = records(two_dir), adapter(two_dir)
    shard = two_dir / "checkpoints" / "step-00000004" / "sharded" / "__1_0.distcp"
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])  # rank 1's shards cut short (a full disk)

    resumed = resume(two_dir, ["train.micro_batch_size=4"], progress=False)
    said = capsys.readouterr().out
    assert "shard file __1_0.distcp holds" in said and "trying the previous checkpoint" in said, said
    assert "resumed from" in said and "step-00000002 (step 2 of 4)" in said, said
    assert (two_dir / "checkpoints" / "step-00000004.damaged").is_dir()
    assert resumed.steps == 4
    for a, b in zip(records(two_dir), straight, strict=True):  # steps 3 and 4 again, as they were
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
    for key, value in final.items():
        torch.testing.assert_close(adapter(two_dir)[key], value, rtol=1e-4, atol=2e-5)


@pytest.mark.parametrize("missing", ["set_gradient_divide_factor", "set_force_sum_reduction_for_comms"])
def test_a_pytorch_whose_fsdp_can_only_average_gradients_is_refused_before_sharding(missing, monkeypatch):
    """PyTorch 2.6 and 2.7 lack these: their FSDP2 would divide every gradient by W without a word."""
    from torch.distributed.fsdp import FSDPModule

    from loralab.errors import ConfigError
    from loralab.models.tiny import tiny_model
    from loralab.train.distributed.strategies.fsdp import ShardedParallel

    monkeypatch.delattr(FSDPModule, missing)
    monkeypatch.setattr(torch, "__version__", "2.7.1")
    model = tiny_model()
    with pytest.raises(ConfigError, match=r"fsdp needs PyTorch 2\.8 or newer \(this is 2\.7\.1.*use ddp"):
        ShardedParallel(model, torch.device("cpu"))
    assert not any(isinstance(m, FSDPModule) for m in model.modules())  # refused before anything was sharded


def test_check_shards_finds_missing_and_cut_files_and_a_bad_index(tmp_path):
    import warnings

    import torch.distributed.checkpoint as dcp

    from loralab.train.checkpoint import DamagedCheckpoint
    from loralab.train.distributed.sharded_checkpoint import SHARDED, check_shards

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one process: DCP warns that torch.distributed is off
        dcp.save({"a": torch.randn(64, 64), "b": torch.randn(8)}, checkpoint_id=str(tmp_path / SHARDED))
    check_shards(tmp_path)  # whole: no error
    (data,) = [p for p in (tmp_path / SHARDED).iterdir() if p.suffix == ".distcp"]
    whole = data.read_bytes()
    data.write_bytes(whole[:-1])
    with pytest.raises(DamagedCheckpoint, match=f"shard file {data.name} holds {len(whole) - 1} of {len(whole)} bytes"):
        check_shards(tmp_path)
    data.unlink()
    with pytest.raises(DamagedCheckpoint, match=f"shard file {data.name} is missing"):
        check_shards(tmp_path)
    (tmp_path / SHARDED / ".metadata").write_bytes(b"not a pickle")
    with pytest.raises(DamagedCheckpoint, match="its shard index"):
        check_shards(tmp_path)


@pytest.mark.parametrize(("setting", "rel"), [
    ("train.gradient_checkpointing=true", 1e-5),  # recomputed activations: the same numbers
    ("train.precision=bf16", 3e-2),  # FSDP's bf16 MixedPrecisionPolicy against one process's bf16 autocast
])  # fmt: skip
def test_full_fine_tuning_under_fsdp_with_activation_checkpointing_or_bf16_equals_one_process(setting, rel, recipe_file, make_recipe, tmp_path):
    short = ("method=full", "~lora", "optimizer.lr=1e-3", setting)
    done = torchrun("train", str(recipe_file(*short, "name=two", "train.micro_batch_size=2", "distributed.strategy=fsdp")), "--no-progress")
    assert done.returncode == 0, done.stderr[-3000:]
    one = train(make_recipe(*SETTINGS, *short, "name=one", "train.micro_batch_size=4"), progress=False)
    mine, theirs = records(tmp_path / "runs" / "two"), records(one.run_dir)
    assert len(mine) == len(theirs) == 4 and theirs[-1]["loss"] < theirs[0]["loss"] - 0.1
    for a, b in zip(mine, theirs):
        assert a["loss"] == pytest.approx(b["loss"], rel=rel), setting
