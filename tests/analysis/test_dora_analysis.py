"""Analysis reads a DoRA run's ΔW = W' − W (the merged weight minus the base), for Linear and Conv1D."""

import copy

import numpy as np
import pytest
import torch
import yaml

import loralab
from loralab.analysis import analyze_spectrum
from loralab.analysis.sources import BaseWeights, DenseUpdate, RunState, open_run


@pytest.mark.parametrize("base_name", ["tiny-llama", "tiny-gpt2"])
def test_dora_delta_is_the_merged_weight_minus_the_base(base_name, tiny_base, tiny_gpt2_base, tmp_path):
    base = tiny_gpt2_base if base_name == "tiny-gpt2" else tiny_base
    model = copy.deepcopy(base)
    loralab.add_adapter(model, loralab.LoraConfig(r=2, alpha=4, use_dora=True, target_modules="all-linear"))
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():  # non-zero factors, and a magnitude away from ‖W‖ so that ΔW is not the low-rank part alone
        for name, param in model.named_parameters():
            if "lora_" in name:
                param.copy_(0.1 * torch.randn(param.shape, generator=gen))
            elif "magnitude" in name:
                param.mul_(1.2)
    folder = tmp_path / "dora"
    folder.mkdir()
    recipe = {"name": "dora", "method": "lora", "model": {"name": base_name}, "data": {"task": "arith"},
              "lora": {"r": 2, "alpha": 4, "use_dora": True}}  # fmt: skip
    (folder / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    loralab.save_adapter(model, folder / "adapter")

    report = analyze_spectrum(folder, progress=False)
    merged = loralab.unload(copy.deepcopy(model), merge=True)
    state = RunState(open_run(folder), BaseWeights(base_name))
    for path in state.paths:  # the matrix read from the folder: exactly (merged weight − base weight)
        W, W_ft = (x.get_submodule(path).weight.detach() for x in (base, merged))
        W, W_ft = (W.T, W_ft.T) if base_name == "tiny-gpt2" else (W, W_ft)
        update = state.matrix(path).update
        assert isinstance(update, DenseUpdate) and isinstance(state.update(path), DenseUpdate)
        torch.testing.assert_close(update.dense(), W_ft - W, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(state.update(path).dense(), W_ft - W, atol=1e-6, rtol=1e-5)
    assert len(report.matrices) > 0
    for m in report.matrices:
        W, W_ft = (copy.deepcopy(x).get_submodule(m.path).weight.detach() for x in (base, merged))
        if base_name == "tiny-gpt2":  # Conv1D stores (d_in, d_out)
            W, W_ft = W.T, W_ft.T
        delta = (W_ft - W).double()
        assert m.rank_bound == min(delta.shape)  # dense: DoRA's ΔW is not rank r
        np.testing.assert_allclose(m.delta_sv, torch.linalg.svdvals(delta).numpy(), rtol=1e-3, atol=1e-5)
        assert torch.linalg.matrix_rank(delta, atol=1e-4) > 2  # more than the LoRA rank: the magnitude counts
