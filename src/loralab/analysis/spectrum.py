"""The spectrum of the weight update ΔW = W_ft − W_base, of W_base and of W_ft, module by module.

For each matrix: σ(ΔW) (for LoRA from the factors, thin: ΔW = scale · B A has rank ≤ r), the rank
holding 50/90/99% of each matrix's energy Σσᵢ² (see ``energy``), the Frobenius norms, and how much
fine-tuning moved W's spectrum: ‖σ(W_ft) − σ(W)‖₂ / ‖σ(W)‖₂ and the change of σ₁. Across the
checkpoints of a run, the ranks of ΔW over training (Biderman et al. 2024: they grow).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from loralab.analysis.energy import DEFAULT_FRACTIONS, check_fractions, energy_ranks, fraction_key
from loralab.analysis.errors import AnalysisError
from loralab.analysis.sources import (
    BaseWeights,
    Run,
    RunState,
    Update,
    PathNamed,
    open_run,
    run_checkpoints,
)

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """float32 (default) or float64: the precision of every SVD."""
    if isinstance(dtype, torch.dtype) and dtype in DTYPES.values():
        return dtype
    if dtype not in DTYPES:
        raise AnalysisError(f"SVDs run in float32 or float64, not {dtype!r}")
    return DTYPES[dtype]


@dataclass
class MatrixSpectrum(PathNamed):
    """The spectra of one module's ΔW, W and W_ft, all (d_out, d_in) = ``shape``.

    ``rank_bound``: r for a LoRA update, min(d_out, d_in) for a dense one. Ranks are keyed by
    fraction of energy. ``base_sv`` / ``tuned_sv`` (σ of W and W_ft) are kept for plots and the API
    but left out of the JSON (``to_dict(weights=True)`` includes them).
    """

    path: str
    shape: tuple[int, int]
    rank_bound: int
    delta_sv: np.ndarray
    delta_ranks: dict[float, int]
    delta_norm: float
    base_sv: np.ndarray | None = None
    tuned_sv: np.ndarray | None = None
    base_ranks: dict[float, int] | None = None
    tuned_ranks: dict[float, int] | None = None
    base_norm: float | None = None
    spectrum_change: float | None = None  # ‖σ(W_ft) − σ(W)‖₂ / ‖σ(W)‖₂
    top_change: float | None = None  # (σ₁(W_ft) − σ₁(W)) / σ₁(W)

    @property
    def relative_norm(self) -> float | None:
        """‖ΔW‖_F / ‖W‖_F."""
        return self.delta_norm / self.base_norm if self.base_norm else None

    def to_dict(self, weights: bool = False) -> dict[str, Any]:
        ranks = lambda r: None if r is None else {fraction_key(f): k for f, k in r.items()}
        out = {
            "path": self.path, "module_type": self.module_type, "layer": self.layer, "shape": list(self.shape),
            "rank_bound": self.rank_bound, "delta_norm": self.delta_norm, "base_norm": self.base_norm,
            "relative_norm": self.relative_norm, "delta_ranks": ranks(self.delta_ranks),
            "base_ranks": ranks(self.base_ranks), "tuned_ranks": ranks(self.tuned_ranks),
            "spectrum_change": self.spectrum_change, "top_singular_value_change": self.top_change,
            "delta_singular_values": _floats(self.delta_sv),
        }  # fmt: skip
        if weights:
            out["base_singular_values"] = _floats(self.base_sv)
            out["tuned_singular_values"] = _floats(self.tuned_sv)
        return out


@dataclass
class TrainingPoint:
    """ΔW's ranks at one checkpoint (``step``; None for the final weights), by module path."""

    step: int | None
    ranks: dict[str, dict[float, int]]
    norms: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "delta_ranks": {p: {fraction_key(f): k for f, k in r.items()} for p, r in self.ranks.items()},
            "delta_norms": self.norms,
        }


@dataclass
class SpectrumReport:
    """``analyze_spectrum``'s result: one MatrixSpectrum per module, and optionally ranks over training."""

    run: str
    folder: str
    method: str
    base_model: str
    step: int | None
    dtype: str
    fractions: tuple[float, ...]
    matrices: list[MatrixSpectrum]
    over_training: list[TrainingPoint] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self, weights: bool = False) -> dict[str, Any]:
        return {
            "analysis": "spectrum", "run": self.run, "folder": self.folder, "method": self.method,
            "base_model": self.base_model, "step": self.step, "dtype": self.dtype,
            "fractions": list(self.fractions), "seconds": round(self.seconds, 3),
            "matrices": [m.to_dict(weights) for m in self.matrices],
            "over_training": [p.to_dict() for p in self.over_training],
        }  # fmt: skip


def delta_singular_values(update: Update, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """σ(ΔW), descending: thin SVD of the factors for LoRA (r values), svdvals of the dense ΔW otherwise."""
    return update.singular_values(dtype)


def matrix_spectrum(
    path: str,
    W: torch.Tensor | None,
    update: Update,
    fractions: Iterable[float] = DEFAULT_FRACTIONS,
    dtype: str | torch.dtype = "float32",
) -> MatrixSpectrum:
    """The spectra of ΔW (always) and, with the base weight W (d_out, d_in), of W and W_ft = W + ΔW."""
    dtype, fractions = resolve_dtype(dtype), check_fractions(fractions)
    S = delta_singular_values(update, dtype)
    delta_sv = S.double().numpy()
    out = MatrixSpectrum(
        path, tuple(update.shape), update.rank_bound, delta_sv, energy_ranks(delta_sv, fractions),
        float(np.sqrt(np.sum(delta_sv**2))),
    )  # fmt: skip
    if W is None:
        return out
    W = W.to(dtype)
    base_sv = torch.linalg.svdvals(W).double().numpy()
    tuned_sv = torch.linalg.svdvals(W + update.dense(dtype)).double().numpy()
    base_size = float(np.linalg.norm(base_sv))
    out.base_sv, out.tuned_sv = base_sv, tuned_sv
    out.base_ranks, out.tuned_ranks = energy_ranks(base_sv, fractions), energy_ranks(tuned_sv, fractions)
    out.base_norm = base_size
    out.spectrum_change = float(np.linalg.norm(tuned_sv - base_sv) / base_size) if base_size else None
    out.top_change = float((tuned_sv[0] - base_sv[0]) / base_sv[0]) if base_sv[0] else None
    return out


def analyze_spectrum(
    run: str | Path | Run,
    *,
    base: str | None = None,
    step: int | None = None,
    over_training: bool = False,
    modules: str | None = None,
    fractions: Iterable[float] = DEFAULT_FRACTIONS,
    dtype: str = "float32",
    progress: bool = True,
) -> SpectrumReport:
    """Spectra of every adapted (LoRA) or linear (full fine-tuning) matrix of a run, one matrix at a time.

    ``step``: analyse that checkpoint instead of the final weights. ``over_training``: also ΔW's ranks
    at every complete checkpoint and at the final weights. ``base``: the base model, overriding the
    recipe's. ``modules``: a regex searched in module paths.
    """
    from loralab.analysis.progress import progress_bar

    start = time.perf_counter()
    run = run if isinstance(run, Run) else open_run(run)
    fractions, torch_dtype = check_fractions(fractions), resolve_dtype(dtype)
    weights = BaseWeights(base or run.base_model)
    state = RunState(run, weights, step, modules)
    checkpoints = run_checkpoints(run) if over_training else []
    if over_training and not checkpoints:  # before any work
        raise AnalysisError(f"run {run.folder} has no complete checkpoints under {run.folder / 'checkpoints'}")
    matrices = []
    with progress_bar(len(state), f"spectrum {run.name}", progress) as bar:
        for m in state.matrices():
            matrices.append(matrix_spectrum(m.path, m.W, m.update, fractions, torch_dtype))
            del m
            bar.update(1)
    points = []
    if over_training:
        points = [_training_point(RunState(run, weights, s, modules), fractions, torch_dtype, progress) for s, _ in checkpoints]
        if step is None:  # the final weights, from the spectra just computed
            points.append(TrainingPoint(None, {m.path: m.delta_ranks for m in matrices}, {m.path: m.delta_norm for m in matrices}))
    return SpectrumReport(
        run.name, str(run.folder), run.method, weights.name, step, str(torch_dtype).removeprefix("torch."),
        fractions, matrices, points, time.perf_counter() - start,
    )  # fmt: skip


def _training_point(state: RunState, fractions, dtype, progress: bool) -> TrainingPoint:
    from loralab.analysis.progress import progress_bar

    ranks, norms = {}, {}
    with progress_bar(len(state), f"ΔW ranks, {state.label}", progress) as bar:
        for path in state.paths:
            S = delta_singular_values(state.update(path), dtype).double().numpy()
            ranks[path], norms[path] = energy_ranks(S, fractions), float(np.linalg.norm(S))
            bar.update(1)
    return TrainingPoint(state.step, ranks, norms)


def _floats(values: np.ndarray | None) -> list[float] | None:
    return None if values is None else [float(f"{v:.6g}") for v in values]
