"""On a short real run of a tiny model: full fine-tuning's ΔW has a higher rank-at-90% than LoRA's r.

Thirty AdamW steps on random tokens, written in the trainer's run-folder layout (with checkpoints),
then analysed like any run.
"""

import copy

import pytest
import torch
import yaml

import loralab
from loralab.analysis import analyze_spectrum, analyze_subspace
from loralab.train.checkpoint import save_checkpoint

STEPS, EVERY, R = 30, 10, 2


def _train(base, method: str, folder, seed: int = 0):
    model = copy.deepcopy(base).train()
    if method == "lora":
        loralab.add_adapter(model, loralab.LoraConfig(r=R, alpha=2 * R, target_modules="all-linear"))
        params, lr = [p for p in model.parameters() if p.requires_grad], 1e-2
    else:
        params, lr = list(model.parameters()), 1e-3
        for p in params:
            p.requires_grad_(True)
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    generator = torch.Generator().manual_seed(seed)
    folder.mkdir(parents=True)
    recipe = {"name": folder.name, "model": {"name": "tiny-llama"}, "method": method, "lora": {"r": R, "alpha": 2 * R}}
    (folder / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    for step in range(1, STEPS + 1):
        tokens = torch.randint(0, 1000, (4, 16), generator=generator)
        model(input_ids=tokens, labels=tokens).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if step % EVERY == 0:
            if method == "lora":
                checkpoint = save_checkpoint(folder / "checkpoints", step, {}, {}, keep=10)
                loralab.save_adapter(model, checkpoint / "adapter")
            else:
                save_checkpoint(folder / "checkpoints", step, dict(model.named_parameters()), {}, keep=10)
    if method == "lora":
        loralab.save_adapter(model, folder / "adapter")
    else:
        model.save_pretrained(folder / "model")
    return folder


@pytest.fixture(scope="module")
def trained_runs(tiny_base, tmp_path_factory):
    root = tmp_path_factory.mktemp("trained")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return _train(tiny_base, "lora", root / "lora"), _train(tiny_base, "full", root / "full")


def test_full_fine_tuning_has_higher_rank_at_90_than_lora_r(trained_runs):
    lora_run, full_run = trained_runs
    lora = analyze_spectrum(lora_run, over_training=True, progress=False)
    full = analyze_spectrum(full_run, over_training=True, progress=False)
    assert [p.step for p in full.over_training] == [10, 20, 30, None]
    assert len(lora.matrices) == len(full.matrices) == 14
    for m in lora.matrices:
        assert m.rank_bound == R and m.delta_ranks[0.9] <= R and m.delta_norm > 0
    for m in full.matrices:
        assert m.delta_ranks[0.9] > R, (m.path, m.delta_ranks)
    assert min(m.delta_ranks[0.9] for m in full.matrices) > max(m.delta_ranks[0.9] for m in lora.matrices)


def test_lora_and_full_updates_can_be_compared(trained_runs):
    report = analyze_subspace(*trained_runs, top=8, progress=False)
    assert report.of == "delta-left" and len(report.modules) == 14
    assert all(m.phi.shape == (2, 8) for m in report.modules)
