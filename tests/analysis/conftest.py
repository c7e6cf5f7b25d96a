"""Run folders built by hand, in the trainer's layout (recipe.yaml, adapter/ or model/, checkpoints/)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import yaml

import loralab
from loralab.lora.targets import base_modules, is_linear, output_head_paths
from loralab.train.checkpoint import save_checkpoint


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """One intra-op thread: on shared, oversubscribed CPUs OpenMP threads spin-waiting on each other
    made these SVDs several times slower (see tests/models/conftest.py)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_base():
    """The base of ``tiny-llama`` runs, exactly as ``load_model("tiny-llama")`` builds it (float32)."""
    from loralab.models import load_model

    return load_model("tiny-llama")[0]


@pytest.fixture(scope="session")
def tiny_gpt2_base():
    from loralab.models import load_model

    return load_model("tiny-gpt2")[0]


def write_recipe(folder: Path, base: str, method: str, name: str | None = None, **extra) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    recipe = {"name": name or folder.name, "model": {"name": base}, "method": method, "data": {"task": "arith"}, **extra}
    (folder / "recipe.yaml").write_text(yaml.safe_dump(recipe))


def linear_paths(model) -> list[str]:
    heads = output_head_paths(model)
    return [p for p, m in base_modules(model) if is_linear(m) and p not in heads]


def randomise_factors(model, seed: int, scale: float = 0.1) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_A" in name or "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * scale)


@pytest.fixture
def make_lora_run(tiny_base, tiny_gpt2_base, tmp_path):
    """make(name, r, seed, targets, steps, base_name) → a LoRA run folder (checkpoints: the factors scaled by step / last)."""

    def make(name="lora", r=4, seed=1, targets="all-linear", steps=(), base_name="tiny-llama", alpha=8.0, method="lora"):
        model = copy.deepcopy(tiny_gpt2_base if base_name == "tiny-gpt2" else tiny_base)
        loralab.add_adapter(model, loralab.LoraConfig(r=r, alpha=alpha, target_modules=targets))
        randomise_factors(model, seed)
        folder = tmp_path / name
        write_recipe(folder, base_name, method, lora={"r": r, "alpha": alpha})
        for step in steps:
            scaled = copy.deepcopy(model)
            with torch.no_grad():
                for param_name, param in scaled.named_parameters():
                    if "lora_B" in param_name:
                        param.mul_(step / max(steps))
            checkpoint = save_checkpoint(folder / "checkpoints", step, {}, {}, keep=100)
            loralab.save_adapter(scaled, checkpoint / "adapter")
        loralab.save_adapter(model, folder / "adapter")
        return folder

    return make


@pytest.fixture
def make_full_run(tiny_base, tiny_gpt2_base, tmp_path):
    """make(name, scale, seed, steps, base_name, dtype, rank) → a full fine-tuning run folder.

    Every linear weight but the head gets W += scale · N(0, 1) (of rank ``rank`` if given); checkpoint
    ``step`` holds W + (step / last) · ΔW for those weights, keyed by parameter name.
    """

    def make(name="full", scale=0.01, seed=2, steps=(), base_name="tiny-llama", dtype=None, rank=None, shard=None):
        model = copy.deepcopy(tiny_gpt2_base if base_name == "tiny-gpt2" else tiny_base)
        generator = torch.Generator().manual_seed(seed)
        deltas = {}
        with torch.no_grad():
            for path in linear_paths(model):
                weight = model.get_submodule(path).weight
                if rank is None:
                    delta = torch.randn(weight.shape, generator=generator) * scale
                else:
                    delta = torch.randn(weight.shape[0], rank, generator=generator) @ torch.randn(rank, weight.shape[1], generator=generator) * scale
                deltas[f"{path}.weight"] = (weight.clone(), delta)
                weight.add_(delta)
        folder = tmp_path / name
        write_recipe(folder, base_name, "full")
        for step in steps:
            tensors = {key: base + delta * (step / max(steps)) for key, (base, delta) in deltas.items()}
            save_checkpoint(folder / "checkpoints", step, tensors, {}, keep=100)
        if dtype is not None:
            model = model.to(dtype)
        model.save_pretrained(folder / "model", **({"max_shard_size": shard} if shard else {}))
        return folder

    return make
