"""Speed options: ``train.compile`` (each decoder layer through torch.compile) trains the same numbers as eager
PyTorch; ``train.liger_kernels`` off CUDA is refused before anything loads."""

import json

import pytest
import torch

from loralab.errors import ConfigError
from loralab.train.model_setup import compile_layers
from loralab.train.trainer import train


def _losses(run_dir):
    return [json.loads(line)["loss"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("method", ["lora", "full"])
def test_compiled_layers_train_as_eager_ones(make_recipe, method):
    torch._dynamo.reset()
    overrides = ("train.max_steps=3", "lora.dropout=0.0") if method == "lora" else ("train.max_steps=3", "method=full", "~lora", "optimizer.lr=1e-3")
    eager = train(make_recipe(*overrides, "name=eager"), progress=False)
    frames_before = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    compiled = train(make_recipe(*overrides, "name=compiled", "train.compile=true"), progress=False)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] > frames_before  # dynamo did compile something
    assert _losses(compiled.run_dir) == pytest.approx(_losses(eager.run_dir), rel=1e-5)
    assert _losses(eager.run_dir)[-1] < _losses(eager.run_dir)[0]
    assert (compiled.run_dir / "recipe.yaml").read_text().count("compile: true") == 1


def test_a_model_without_named_layers_cannot_be_compiled():
    with pytest.raises(ConfigError, match="train.compile"):
        compile_layers(torch.nn.Sequential(torch.nn.Linear(2, 2)))


def test_liger_kernels_on_the_cpu_are_refused_before_anything_loads(make_recipe, tmp_path):
    with pytest.raises(ConfigError, match="train.liger_kernels: Liger's kernels are Triton kernels for CUDA GPUs"):
        train(make_recipe("train.liger_kernels=true"), progress=False)
    assert not (tmp_path / "runs").exists()
