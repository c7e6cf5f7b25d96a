"""Amplification (LoRA paper, Table 7): planted directions, and a run."""

import numpy as np
import pytest
import torch

from loralab.analysis import DenseUpdate, LowRankUpdate, analyze_amplification, module_amplification


def test_planted_amplification_by_hand():
    """W = diag(10, 5, 1, 0.1, …); ΔW = 2 e₄ e₄ᵀ points where W has 0.1: the factor is 2 / 0.1 = 20."""
    d = 8
    W = torch.diag(torch.tensor([10.0, 5.0, 1.0, 0.1, 0.1, 0.1, 0.1, 0.1], dtype=torch.float64))
    e = torch.eye(d, dtype=torch.float64)
    delta = 2 * e[:, 3:4] @ e[3:4, :]
    generator = torch.Generator().manual_seed(0)
    row = module_amplification("m", W, DenseUpdate(delta), 1, generator, torch.float64)
    assert row.r == 1 and row.delta_norm == pytest.approx(2.0)
    assert row.delta_projection == pytest.approx(0.1) and row.factor == pytest.approx(20.0)
    assert row.weight_projection == pytest.approx(10.0)  # W's own top direction: σ₁
    assert row.weight_norm == pytest.approx(float(torch.linalg.matrix_norm(W)))
    # the same update as LoRA factors; r is capped at the update's rank
    low_rank = module_amplification("m", W, LowRankUpdate(e[3:4, :], e[:, 3:4], 2.0), 4, generator, torch.float64)
    assert low_rank.r == 1 and low_rank.factor == pytest.approx(20.0)


def test_random_directions_see_about_r_over_d_of_w():
    """E‖UᵀWVᵀ‖²_F = r² ‖W‖²_F / (d_out d_in) for Haar-random U, V."""
    generator = torch.Generator().manual_seed(0)
    W = torch.randn(200, 100, generator=generator, dtype=torch.float64)
    delta = DenseUpdate(torch.randn(200, 100, generator=generator, dtype=torch.float64))
    values = [module_amplification("m", W, delta, 4, generator, torch.float64).random_projection ** 2 for _ in range(200)]
    expected = 16 * float(torch.linalg.matrix_norm(W)) ** 2 / (200 * 100)
    assert np.mean(values) == pytest.approx(expected, rel=0.15)


def test_lora_run_amplification(make_lora_run):
    report = analyze_amplification(make_lora_run(r=4), progress=False)
    assert len(report.modules) == 14
    for m in report.modules:
        assert m.r == 4 and m.factor == pytest.approx(m.delta_norm / m.delta_projection)
        assert m.weight_projection >= m.delta_projection - 1e-6  # W's own top-r directions hold the most of W
    assert analyze_amplification(make_lora_run("r2", r=4), rank=2, progress=False).modules[0].r == 2
