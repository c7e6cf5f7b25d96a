"""Normalised subspace similarity φ: planted subspaces, and between runs."""

import numpy as np
import pytest
import torch

from loralab.analysis import AnalysisError, LowRankUpdate, analyze_subspace, subspace_similarity
from loralab.analysis.subspace import shared_directions, singular_basis


def _orthogonal(d: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.linalg.qr(rng.standard_normal((d, d)))[0]


def test_phi_of_a_subspace_with_itself_is_one():
    U = _orthogonal(20)[:, :6]
    np.testing.assert_allclose(subspace_similarity(U, U), np.ones((6, 6)), atol=1e-12)


def test_phi_of_orthogonal_subspaces_is_zero():
    Q = _orthogonal(20)
    np.testing.assert_allclose(subspace_similarity(Q[:, :4], Q[:, 4:10]), np.zeros((4, 6)), atol=1e-12)


def test_phi_of_half_overlapping_subspaces_is_one_half():
    Q = _orthogonal(30, seed=1)
    phi = subspace_similarity(Q[:, :4], Q[:, 2:6])  # share 2 of 4 dimensions
    assert phi[3, 3] == pytest.approx(0.5)
    assert phi[1, 1] == pytest.approx(0.0, abs=1e-12)  # the top-2 of each are orthogonal
    e = np.eye(3)
    assert subspace_similarity(e[:, [0, 1]], e[:, [0, 2]])[1, 1] == pytest.approx(0.5)
    assert shared_directions(Q[:, :4], Q[:, 2:6]) == 2


def test_phi_by_hand_for_a_tilted_direction():
    """φ(1, 1) = cos²θ for two unit vectors at angle θ; φ(i, j) ∈ [0, 1] everywhere."""
    theta = 0.3
    a = np.array([[1.0], [0.0]])
    b = np.array([[np.cos(theta)], [np.sin(theta)]])
    assert subspace_similarity(a, b)[0, 0] == pytest.approx(np.cos(theta) ** 2)
    rng = np.random.default_rng(0)
    U_a, U_b = np.linalg.qr(rng.standard_normal((500, 8)))[0], np.linalg.qr(rng.standard_normal((500, 64)))[0]
    phi = subspace_similarity(U_a, U_b)
    assert phi.shape == (8, 64) and phi.min() >= 0 and phi.max() <= 1
    assert phi[0, 0] < 0.05 and abs(phi[-1, -1] - 64 / 500) < 0.05  # random subspaces: about max(i, j) / d


def test_singular_basis_of_A_is_its_row_space():
    generator = torch.Generator().manual_seed(0)
    A, B = torch.randn(3, 12, generator=generator), torch.randn(10, 3, generator=generator)
    U = singular_basis(LowRankUpdate(A, B, 1.0), "A", top=64, dtype=torch.float64)
    assert U.shape == (12, 3)
    projector = U @ U.T
    np.testing.assert_allclose((A.double() @ projector).numpy(), A.double().numpy(), atol=1e-10)
    assert singular_basis(LowRankUpdate(A, B, 1.0), "delta-left", top=2).shape == (10, 2)


def test_two_lora_runs(make_lora_run):
    r8, r2 = make_lora_run("r8", r=8, seed=1), make_lora_run("r2", r=2, seed=5)
    same = analyze_subspace(r8, r8, of="A", progress=False)
    assert same.of == "A" and len(same.modules) == 14
    assert analyze_subspace(r8, r8, progress=False).of == "delta-left"  # the default: what the update learned
    for m in same.modules:
        np.testing.assert_allclose(m.phi, 1.0, atol=1e-5)
    report = analyze_subspace(r2, r8, progress=False)
    assert all(m.phi.shape == (2, 8) and 0 <= m.phi.min() and m.phi.max() <= 1 + 1e-9 for m in report.modules)
    assert set(report.mean_by_type()) == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert report.to_dict()["modules"][0]["phi"] == np.round(report.modules[0].phi, 4).tolist()


def test_full_and_lora_runs_compare_left_singular_vectors_of_delta(make_lora_run, make_full_run):
    report = analyze_subspace(make_full_run(), make_lora_run(r=4), top=16, progress=False)
    assert report.of == "delta-left"
    assert len(report.modules) == 14
    assert all(m.phi.shape == (16, 4) and m.dim == {"k_proj": 16, "v_proj": 16, "gate_proj": 64, "up_proj": 64}.get(m.module_type, 32) for m in report.modules)


def test_bad_pairs_are_clear_errors(make_lora_run, make_full_run):
    with pytest.raises(AnalysisError, match="different base models"):
        analyze_subspace(make_lora_run("llama"), make_lora_run("gpt2", base_name="tiny-gpt2"), progress=False)
    with pytest.raises(AnalysisError, match="full fine-tuning run with no adapter"):
        analyze_subspace(make_lora_run("a"), make_full_run("f"), of="A", progress=False)
    with pytest.raises(AnalysisError, match="no module has an update in both runs"):
        analyze_subspace(make_lora_run("q", targets=["q_proj"]), make_lora_run("v", targets=["v_proj"]), progress=False)
    with pytest.raises(AnalysisError, match="no complete checkpoint at step 3"):
        analyze_subspace(make_lora_run("c"), make_lora_run("d"), step_b=3, progress=False)
