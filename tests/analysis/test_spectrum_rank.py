"""Spectrum of ΔW: planted ranks, the thin factor path against numpy, LoRA and full-fine-tuning runs."""

import copy

import numpy as np
import pytest
import torch

import loralab
from loralab.analysis import (
    AnalysisError,
    DenseUpdate,
    LowRankUpdate,
    analyze_spectrum,
    energy_ranks,
    matrix_spectrum,
    rank_at,
)


def _orthonormal(rows: int, cols: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.linalg.qr(torch.randn(rows, cols, generator=generator, dtype=torch.float64))[0]


def _planted(d_out=40, d_in=30, values=(4.0, 3.0, 2.0, 1.0, 0.5)):
    """ΔW = U diag(s) Vᵀ with known singular values s (rank k = len(s))."""
    s = torch.tensor(values, dtype=torch.float64)
    U, V = _orthonormal(d_out, len(s), 0), _orthonormal(d_in, len(s), 1)
    return U, s, V


# σ = 4, 3, 2, 1, 0.5 → energies 16, 9, 4, 1, 0.25 (total 30.25), cumulative 16, 25, 29, 30, 30.25:
# 50% = 15.125 → 1; 90% = 27.225 → 3; 99% = 29.9475 → 4.
PLANTED_RANKS = {0.5: 1, 0.9: 3, 0.99: 4}


def test_planted_rank_at_energy_by_hand():
    assert energy_ranks([4, 3, 2, 1, 0.5]) == PLANTED_RANKS
    assert energy_ranks([0.5, 2, 4, 1, 3]) == PLANTED_RANKS  # any order
    assert rank_at([1.0] * 10, 0.9) == 9  # an exact tie is not pushed over by rounding
    assert rank_at([1.0] * 10, 1.0) == 10
    assert rank_at([0.0, 0.0], 0.9) == 0 and rank_at([], 0.9) == 0
    with pytest.raises(AnalysisError, match="fractions"):
        energy_ranks([1.0], (0.0,))


def test_planted_dense_and_low_rank_updates_give_the_hand_ranks():
    U, s, V = _planted()
    dense = matrix_spectrum("m", None, DenseUpdate((U * s) @ V.T), dtype="float64")
    low_rank = matrix_spectrum("m", None, LowRankUpdate(V.T.float(), (U * s).float() / 2.0, 2.0))
    assert dense.delta_ranks == PLANTED_RANKS and low_rank.delta_ranks == PLANTED_RANKS
    np.testing.assert_allclose(dense.delta_sv[:5], s.numpy(), rtol=1e-10)
    np.testing.assert_allclose(dense.delta_sv[5:], 0, atol=1e-12)
    np.testing.assert_allclose(low_rank.delta_sv, s.numpy(), rtol=1e-5)
    assert low_rank.rank_bound == 5 and dense.rank_bound == 30
    assert dense.delta_norm == pytest.approx(30.25**0.5)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_thin_factor_path_equals_numpy_full_svd_of_the_product(dtype):
    generator = torch.Generator().manual_seed(3)
    B, A, scale = torch.randn(50, 6, generator=generator), torch.randn(6, 40, generator=generator), 2.5
    update = LowRankUpdate(A, B, scale)
    S = update.singular_values(getattr(torch, dtype)).double().numpy()
    product = scale * B.double().numpy() @ A.double().numpy()
    expected = np.linalg.svd(product, compute_uv=False)
    assert S.shape == (6,)
    np.testing.assert_allclose(S, expected[:6], rtol=1e-5 if dtype == "float32" else 1e-12)
    np.testing.assert_allclose(expected[6:], 0, atol=1e-10)
    U, S_t, Vh = update.svd(torch.float64)
    np.testing.assert_allclose((U * S_t) @ Vh, product, atol=1e-10)
    # with the base weight, W_ft's spectrum is that of W + ΔW
    W = torch.randn(50, 40, generator=generator)
    spectrum = matrix_spectrum("m", W, update, dtype=dtype)
    np.testing.assert_allclose(spectrum.tuned_sv, np.linalg.svd(W.double().numpy() + product, compute_uv=False), rtol=1e-4)


def test_lora_run_spectrum_matches_the_merged_model(make_lora_run, tiny_base):
    run = make_lora_run(r=4)
    report = analyze_spectrum(run, progress=False)
    assert report.method == "lora" and len(report.matrices) == 14  # 7 linear modules × 2 layers
    merged = copy.deepcopy(tiny_base)
    loralab.load_adapter(merged, run / "adapter")
    loralab.merge(merged)
    for m in report.matrices:
        assert m.rank_bound == 4 and len(m.delta_sv) == 4 and m.delta_ranks[0.99] <= 4
        W = tiny_base.get_submodule(m.path).weight.detach()
        W_ft = merged.get_submodule(m.path).base_layer.weight.detach()
        np.testing.assert_allclose(m.base_sv, torch.linalg.svdvals(W.double()).numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(m.tuned_sv, torch.linalg.svdvals(W_ft.double()).numpy(), rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(m.delta_sv, torch.linalg.svdvals((W_ft - W).double()).numpy()[:4], rtol=1e-3, atol=1e-6)
        assert m.spectrum_change > 0 and m.relative_norm > 0


def test_full_run_spectrum_is_that_of_the_saved_difference(make_full_run, tiny_base):
    run = make_full_run(scale=0.01)
    report = analyze_spectrum(run, progress=False, dtype="float64")
    from safetensors.torch import load_file

    saved = load_file(str(run / "model" / "model.safetensors"))
    assert report.method == "full" and len(report.matrices) == 14
    for m in report.matrices:
        delta = saved[f"{m.path}.weight"].double() - tiny_base.get_submodule(m.path).weight.detach().double()
        np.testing.assert_allclose(m.delta_sv, torch.linalg.svdvals(delta).numpy(), rtol=1e-6, atol=1e-9)
        assert m.rank_bound == min(m.shape) and m.delta_ranks[0.9] > 4  # a dense random ΔW is high-rank


def test_planted_rank_of_a_full_run(make_full_run):
    report = analyze_spectrum(make_full_run(rank=3, scale=0.05), progress=False)
    for m in report.matrices:
        assert m.delta_ranks[0.99] <= 3 and m.delta_sv[3] < 1e-4 * m.delta_sv[0]


def test_rank_over_training_and_one_checkpoint(make_full_run, make_lora_run):
    report = analyze_spectrum(make_full_run(steps=(10, 20)), over_training=True, progress=False)
    assert [p.step for p in report.over_training] == [10, 20, None]
    halfway, final = report.over_training[0], report.over_training[-1]
    path = report.matrices[0].path
    assert final.norms[path] == pytest.approx(2 * halfway.norms[path], rel=1e-4)

    lora = make_lora_run(steps=(5, 10))
    at_5 = analyze_spectrum(lora, step=5, progress=False)
    final = analyze_spectrum(lora, progress=False)
    assert at_5.step == 5
    assert at_5.matrices[0].delta_norm == pytest.approx(final.matrices[0].delta_norm / 2, rel=1e-5)


def test_sixteen_bit_run_is_measured_from_the_rounded_base(make_full_run):
    """A bfloat16 run with no change has ΔW = 0, not the rounding error of the float32 base."""
    report = analyze_spectrum(make_full_run(scale=0.0, dtype=torch.bfloat16), progress=False)
    assert all(m.delta_norm == 0 and m.delta_ranks[0.9] == 0 for m in report.matrices)


def test_base_read_lazily_from_a_sharded_folder(make_full_run, tiny_base, tmp_path):
    folder = tmp_path / "base-folder"
    tiny_base.save_pretrained(folder, max_shard_size="2MB")
    assert (folder / "model.safetensors.index.json").is_file()
    run = make_full_run(shard="2MB")
    by_name = analyze_spectrum(run, progress=False)
    by_folder = analyze_spectrum(run, base=str(folder), progress=False)
    assert by_folder.base_model == str(folder)
    for a, b in zip(by_name.matrices, by_folder.matrices):
        assert a.path == b.path
        np.testing.assert_array_equal(a.delta_sv, b.delta_sv)


def test_gpt2_conv1d_layout_lines_up(make_lora_run, tiny_gpt2_base):
    run = make_lora_run(base_name="tiny-gpt2", r=2)
    report = analyze_spectrum(run, progress=False)
    merged = copy.deepcopy(tiny_gpt2_base)
    loralab.load_adapter(merged, run / "adapter")
    loralab.merge(merged)
    assert {m.module_type for m in report.matrices} == {"c_attn", "c_proj", "c_fc"}
    for m in report.matrices:
        W_ft = merged.get_submodule(m.path).base_layer.weight.detach()  # (d_in, d_out)
        assert m.shape == tuple(W_ft.T.shape)
        np.testing.assert_allclose(m.tuned_sv, torch.linalg.svdvals(W_ft.double()).numpy(), rtol=1e-4, atol=1e-6)


def test_bad_input_is_a_clear_error(make_lora_run, make_full_run, tmp_path):
    with pytest.raises(AnalysisError, match="does not exist"):
        analyze_spectrum(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AnalysisError, match="no recipe.yaml"):
        analyze_spectrum(tmp_path / "empty")
    lora = make_lora_run(steps=(5,))
    with pytest.raises(AnalysisError, match=r"no complete checkpoint at step 7 \(complete checkpoints: 5\)"):
        analyze_spectrum(lora, step=7, progress=False)
    with pytest.raises(AnalysisError, match="no complete checkpoints"):
        analyze_spectrum(make_lora_run(name="no-checkpoints"), over_training=True, progress=False)
    with pytest.raises(AnalysisError, match="matches none"):
        analyze_spectrum(lora, modules="nothing_like_this", progress=False)
    # an adapter of another base model
    with pytest.raises(AnalysisError, match="another base model"):
        analyze_spectrum(lora, base="tiny-gpt2", progress=False)
    # a LoRA run whose adapter is missing
    unfinished = make_lora_run(name="unfinished")
    import shutil

    shutil.rmtree(unfinished / "adapter")
    with pytest.raises(AnalysisError, match="has no adapter"):
        analyze_spectrum(unfinished, progress=False)
    full = make_full_run()
    with pytest.raises(AnalysisError, match="holds no weight of a linear layer"):
        analyze_spectrum(full, base="tiny-gpt2", progress=False)


def test_embedding_adapters_line_up(tiny_base, tmp_path):
    """An embedding adapter (PEFT layout: lora_embedding_A (r, num_embeddings), _B (dim, r)), written by hand."""
    import json

    import yaml
    from safetensors.torch import save_file

    generator = torch.Generator().manual_seed(0)
    E = tiny_base.get_submodule("model.embed_tokens").weight.detach()  # (num_embeddings, dim)
    A, B = torch.randn(2, E.shape[0], generator=generator), torch.randn(E.shape[1], 2, generator=generator)
    qA, qB = torch.randn(2, 32, generator=generator), torch.randn(32, 2, generator=generator)
    run = tmp_path / "embedding-run"
    (run / "adapter").mkdir(parents=True)
    (run / "recipe.yaml").write_text(yaml.safe_dump({"model": {"name": "tiny-llama"}, "method": "lora", "data": {"task": "arith"}}))
    config = {"peft_type": "LORA", "r": 2, "lora_alpha": 4, "target_modules": ["embed_tokens", "q_proj"]}
    (run / "adapter" / "adapter_config.json").write_text(json.dumps(config))
    prefix = "base_model.model.model."
    save_file({
        prefix + "embed_tokens.lora_embedding_A": A, prefix + "embed_tokens.lora_embedding_B": B,
        prefix + "layers.0.self_attn.q_proj.lora_A.weight": qA, prefix + "layers.0.self_attn.q_proj.lora_B.weight": qB,
    }, str(run / "adapter" / "adapter_model.safetensors"))  # fmt: skip
    report = analyze_spectrum(run, progress=False)
    embedding, q = report.matrices  # model order: the embedding first
    assert embedding.path == "model.embed_tokens" and q.path == "model.layers.0.self_attn.q_proj"
    assert embedding.shape == (E.shape[1], E.shape[0]) and embedding.rank_bound == 2
    W_ft = E.double() + 2.0 * (B.double() @ A.double()).T  # scale = alpha / r = 2
    np.testing.assert_allclose(embedding.tuned_sv, torch.linalg.svdvals(W_ft).numpy(), rtol=1e-4, atol=1e-6)
