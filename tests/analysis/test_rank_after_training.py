"""On a short real run of a tiny model: full fine-tuning's ΔW has a higher rank-at-90% than LoRA's r.

Thirty steps of the real trainer (``loralab.train``) on packed raw text, checkpoints every ten,
then analysed like any run.
"""

import pytest

from loralab.analysis import analyze_spectrum, analyze_subspace
from loralab.train.recipe import recipe_from_dict
from loralab.train.trainer import train

STEPS, EVERY, R = 30, 10, 2


def _train(method: str, root):
    recipe = recipe_from_dict({
        "name": method, "output_dir": str(root), "method": method,
        "model": {"name": "tiny-llama"},
        "lora": {"r": R, "alpha": 2 * R, "target_modules": "all-linear"} if method == "lora" else None,
        "data": {"task": "source-text", "regime": "pretraining", "block_size": 32, "examples": 40},
        "optimizer": {"lr": 1e-2 if method == "lora" else 1e-3},
        "train": {"max_steps": STEPS, "micro_batch_size": 4, "schedule": "constant",
                  "checkpoint_every": EVERY, "keep_checkpoints": 5},
    })  # fmt: skip
    return train(recipe, progress=False).run_dir


@pytest.fixture(scope="module")
def trained_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("trained")
    return _train("lora", root), _train("full", root)


def test_full_fine_tuning_has_higher_rank_at_90_than_lora_r(trained_runs):
    lora_run, full_run = trained_runs
    lora = analyze_spectrum(lora_run, over_training=True, progress=False)
    full = analyze_spectrum(full_run, over_training=True, progress=False)
    assert [p.step for p in full.over_training] == [10, 20, 30, None]
    assert len(lora.matrices) == len(full.matrices) == 14
    for m in lora.matrices:
        assert m.rank_bound == R and m.delta_ranks[0.9] <= R and m.delta_norm > 0
    full_ranks = sorted(m.delta_ranks[0.9] for m in full.matrices)
    print("full fine-tuning rank at 90%:", full_ranks)
    assert min(full_ranks) >= R  # never below LoRA's rank...
    assert sum(r > R for r in full_ranks) >= 0.8 * len(full_ranks)  # ...and above it almost everywhere
    assert sum(full_ranks) / len(full_ranks) > 2 * R


def test_lora_and_full_updates_can_be_compared(trained_runs):
    report = analyze_subspace(*trained_runs, top=8, progress=False)
    assert report.of == "delta-left" and len(report.modules) == 14
    assert all(m.phi.shape == (2, 8) for m in report.modules)
