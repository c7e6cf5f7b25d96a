"""Gradient accumulation equals a larger batch, through whole trainings; the learning rate follows the schedule."""

import json

import pytest
import torch
from safetensors.torch import load_file

from loralab.train.trainer import train


def _adapter(run_dir):
    return load_file(str(run_dir / "adapter" / "adapter_model.safetensors"))


def test_k_micro_batches_equal_one_batch_k_times_larger(make_recipe):
    common = ("train.max_steps=3", "train.schedule=constant", "train.max_grad_norm=0")
    big = train(make_recipe(*common, "name=big", "train.micro_batch_size=8", "train.grad_accum=1"), progress=False)
    small = train(make_recipe(*common, "name=small", "train.micro_batch_size=2", "train.grad_accum=4"), progress=False)
    big_losses = [json.loads(l)["loss"] for l in (big.run_dir / "metrics.jsonl").read_text().splitlines()]
    small_losses = [json.loads(l)["loss"] for l in (small.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert small_losses == pytest.approx(big_losses, rel=1e-5)
    a, b = _adapter(big.run_dir), _adapter(small.run_dir)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5)
    assert any(t.abs().max() > 0 for k, t in a.items() if "lora_B" in k)


def test_learning_rate_follows_the_schedule_hand_computed(make_recipe):
    recipe = make_recipe("train.max_steps=5", "train.schedule=linear", "train.warmup_steps=2", "optimizer.lr=0.01")
    run = train(recipe, progress=False)
    lrs = [json.loads(l)["lr"] for l in (run.run_dir / "metrics.jsonl").read_text().splitlines()]
    # warmup (t+1)/2 for t = 0, 1; then linear decay 1 - (t-2)/3 for t = 2, 3, 4
    assert lrs == pytest.approx([0.005, 0.01, 0.01, 0.01 * 2 / 3, 0.01 / 3])
