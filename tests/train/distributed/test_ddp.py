"""DDP over 2 ranks (Gloo, CPU) against one process with micro-batches twice as large: the same run."""

import json

import pytest
import torch
from distributed_runs import SETTINGS, adapter, files, records, torchrun

from loralab.train.trainer import train

#: evaluations before, after step 2 and at the end; under DDP rank 0 runs them while rank 1 waits
EVAL = ("eval.tasks=[arith, source-kl]", "eval.limit=2", "eval.every=2", "eval.precision=fp32",
        "eval.settings={max_new_tokens: 4}")  # fmt: skip


def test_two_ranks_equal_one_process_with_twice_the_micro_batch(recipe_file, make_recipe):
    """torchrun -m loralab train: 2 ranks × micro-batch 2 (grad_accum 2) = 1 process × micro-batch 4."""
    done = torchrun("train", str(recipe_file("name=two", "train.micro_batch_size=2", *EVAL)), "--no-progress")
    assert done.returncode == 0, done.stderr[-3000:]
    one = train(make_recipe(*SETTINGS, "name=one", "train.micro_batch_size=4", *EVAL), progress=False)
    two_dir = one.run_dir.parent / "two"

    mine, theirs = records(two_dir), records(one.run_dir)
    assert [r["step"] for r in mine] == [1, 2, 3, 4]
    for a, b in zip(mine, theirs):
        assert a["labelled_tokens"] == b["labelled_tokens"] and a["tokens"] == b["tokens"]  # the same examples per step
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
        assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-4)
    assert theirs[-1]["loss"] < theirs[0]["loss"] - 0.05  # it learned something

    got, expected = adapter(two_dir), adapter(one.run_dir)
    assert got.keys() == expected.keys()
    assert any(v.abs().max() > 1e-3 for k, v in expected.items() if "lora_B" in k)  # B moved away from 0
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=1e-4, atol=1e-6)

    for label in ("before", "step-00000002", "final"):  # the same evaluations as one process
        got, expected = (json.loads((d / "eval" / f"{label}.json").read_text()) for d in (two_dir, one.run_dir))
        assert [r["task"] for r in got] == [r["task"] for r in expected] and len(got) >= 2
        for a, b in zip(got, expected):
            assert a["value"] == pytest.approx(b["value"], rel=1e-4, abs=1e-6), (label, a["task"])
    assert json.loads((two_dir / "eval" / "final.json").read_text())[-1]["value"] > 0  # KL to the base: it moved

    # only rank 0 wrote: the same files as the one-process run, and nothing else
    assert files(two_dir) == files(one.run_dir)
    assert "distributed" not in (two_dir / "recipe.yaml").read_text()


#: methods and objectives beyond plain LoRA under DDP (frozen base replicated, adapter gradients all-reduced)
VARIANTS = {
    "dpo": ("train.objective=dpo", "data.task=arith-preference", "data.examples=8", "data.regime=preference", "data.max_length=160",
            "dpo.beta=0.1", "~data.path"),
    "qlora": ("method=qlora", "quant.compute_dtype=float32"),
    "dora-rslora": ("lora.use_dora=true", "lora.rslora=true"),
}  # fmt: skip


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_dpo_qlora_and_dora_on_two_ranks_equal_one_process(variant, recipe_file, make_recipe):
    extra = VARIANTS[variant]
    done = torchrun("train", str(recipe_file("name=two", "train.micro_batch_size=2", *extra)), "--no-progress")
    assert done.returncode == 0, done.stderr[-3000:]
    one = train(make_recipe(*SETTINGS, "name=one", "train.micro_batch_size=4", *extra), progress=False)
    two_dir = one.run_dir.parent / "two"
    mine, theirs = records(two_dir), records(one.run_dir)
    assert len(mine) == len(theirs) == 4
    for a, b in zip(mine, theirs):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5), variant
        assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-4), variant
    if variant == "dpo":
        assert [r["pairs"] for r in mine] == [r["pairs"] for r in theirs] == [8] * 4  # 4 × grad_accum 2, counted over both ranks
    got, expected = adapter(two_dir), adapter(one.run_dir)
    assert got.keys() == expected.keys()
    if variant.startswith("dora"):
        assert any("magnitude" in k for k in expected)  # DoRA's magnitudes are trained and synchronised too
    assert any(v.abs().max() > 1e-3 for k, v in expected.items() if "lora_B" in k)
    for key in expected:
        # Adam turns a gradient of ~1e-9 (a vocabulary row of lm_head's B no example uses) into a step of ±lr whose
        # sign rounding decides (two halves summed vs one sum): a few such elements differ; the tensors agree
        difference = (got[key] - expected[key]).norm() / expected[key].norm().clamp_min(1e-12)
        assert difference < 1e-3, (variant, key, difference)
        assert ((got[key] - expected[key]).abs() > 1e-5).float().mean() < 1e-3, (variant, key)
    assert files(two_dir) == files(one.run_dir)


def test_the_buffer_switch_has_the_name_this_pytorch_takes():
    """PyTorch 2.13 deprecates DDP's ``broadcast_buffers`` for ``forward_sync_buffers``; the GPU images' 2.11 knows only the old name."""
    import inspect

    from torch.nn.parallel import DistributedDataParallel

    from loralab.train.distributed.strategies.ddp import no_buffer_sync

    class Before213:
        def __init__(self, module, device_ids=None, broadcast_buffers=True): ...

    class From213:
        def __init__(self, module, device_ids=None, broadcast_buffers=True, forward_sync_buffers=None): ...

    assert no_buffer_sync(Before213) == {"broadcast_buffers": False}
    assert no_buffer_sync(From213) == {"forward_sync_buffers": False}
    accepted = inspect.signature(DistributedDataParallel.__init__).parameters
    assert no_buffer_sync() == {"forward_sync_buffers" if "forward_sync_buffers" in accepted else "broadcast_buffers": False}
