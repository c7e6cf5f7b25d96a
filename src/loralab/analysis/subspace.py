"""Normalised subspace similarity between the updates of two runs (Hu et al. 2021, Sec. 7.2, Fig. 3).

For U_a: (d, k_a), U_b: (d, k_b) with orthonormal columns ordered by singular value,

    φ(i, j) = ‖U_a[:, :i]ᵀ U_b[:, :j]‖²_F / min(i, j)  ∈ [0, 1]

(1: one top subspace contains the other; 0: orthogonal; random subspaces give about max(i, j) / d).
The columns are the left singular vectors of ΔW (the default: the output directions the update
writes into; for LoRA, the span of B), its right singular vectors, or the right singular vectors of
the LoRA factor A (r, d_in) — the paper's choice, after long training. In a short run A hardly
leaves its random start (B starts at zero and moves first), so A's subspace still mostly reflects
the initialisation and φ of A is near its random value even where the two updates agree; ΔW's
left vectors contain only what was learned and mean the same for LoRA and full fine-tuning.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from loralab.analysis.errors import AnalysisError
from loralab.analysis.sources import (
    BaseWeights,
    LowRankUpdate,
    Run,
    RunState,
    PathNamed,
    open_run,
    same_base,
)
from loralab.analysis.spectrum import resolve_dtype

BASES = ("auto", "A", "delta-left", "delta-right")


def subspace_similarity(U_a: torch.Tensor | np.ndarray, U_b: torch.Tensor | np.ndarray) -> np.ndarray:
    """φ as a (k_a, k_b) array: ``phi[i - 1, j - 1]`` = φ(i, j), from U_a: (d, k_a), U_b: (d, k_b) orthonormal columns."""
    U_a, U_b = (np.asarray(U.detach().cpu() if isinstance(U, torch.Tensor) else U, dtype=np.float64) for U in (U_a, U_b))
    if U_a.shape[0] != U_b.shape[0]:
        raise AnalysisError(f"subspaces of different spaces ({U_a.shape[0]} vs {U_b.shape[0]} dimensions) cannot be compared")
    overlap = (U_a.T @ U_b) ** 2
    cumulative = overlap.cumsum(axis=0).cumsum(axis=1)  # [i-1, j-1] = ‖U_a,iᵀ U_b,j‖²_F
    i = np.arange(1, U_a.shape[1] + 1)[:, None]
    j = np.arange(1, U_b.shape[1] + 1)[None, :]
    return np.clip(cumulative / np.minimum(i, j), 0.0, 1.0)


def shared_directions(U_a: torch.Tensor | np.ndarray, U_b: torch.Tensor | np.ndarray, threshold: float = 0.5) -> int:
    """How many principal directions of the two subspaces have cos² > ``threshold``."""
    U_a, U_b = (np.asarray(U.detach().cpu() if isinstance(U, torch.Tensor) else U, dtype=np.float64) for U in (U_a, U_b))
    cosines = np.linalg.svd(U_a.T @ U_b, compute_uv=False)
    return int(np.sum(cosines**2 > threshold))


def singular_basis(update: LowRankUpdate, of: str, top: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(d, k ≤ top) orthonormal columns: right singular vectors of A (r, d_in), or left / right ones of ΔW."""
    if of == "A":
        if not isinstance(update, LowRankUpdate):
            raise AnalysisError("the right singular vectors of A need a LoRA update")
        _, _, Vh = torch.linalg.svd(update.A.to(dtype), full_matrices=False)
        return Vh[:top].T
    U, _, Vh = update.svd(dtype)
    return U[:, :top] if of == "delta-left" else Vh[:top].T


@dataclass
class ModuleSimilarity(PathNamed):
    """φ between two runs' top subspaces of one module, in a space of ``dim`` dimensions."""

    path: str
    dim: int
    phi: np.ndarray  # (k_a, k_b)
    shared: int  # principal directions with cos² > 0.5

    def summary(self) -> dict[str, Any]:
        k_a, k_b = self.phi.shape
        return {
            "phi_1_1": float(self.phi[0, 0]),
            "phi_top": float(self.phi[-1, -1]),
            "phi_mean": float(self.phi.mean()),
            "shared_directions": self.shared,
            "random_phi_1_1": 1 / self.dim,
            "random_phi_top": max(k_a, k_b) / self.dim,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path, "module_type": self.module_type, "layer": self.layer, "dim": self.dim,
            "k_a": self.phi.shape[0], "k_b": self.phi.shape[1], **self.summary(),
            "phi": np.round(self.phi, 4).tolist(),
        }  # fmt: skip


@dataclass
class SubspaceReport:
    """``analyze_subspace``'s result: φ per module common to both runs."""

    run_a: str
    run_b: str
    of: str
    top: int
    modules: list[ModuleSimilarity]
    seconds: float = 0.0
    base_model: str = ""
    steps: tuple[int | None, int | None] = (None, None)

    def mean_by_type(self) -> dict[str, np.ndarray]:
        """φ averaged over layers per module type (cropped to the smallest grid of that type)."""
        grids: dict[str, list[np.ndarray]] = {}
        for m in self.modules:
            grids.setdefault(m.module_type, []).append(m.phi)
        out = {}
        for kind, found in grids.items():
            k_a, k_b = min(g.shape[0] for g in found), min(g.shape[1] for g in found)
            out[kind] = np.mean([g[:k_a, :k_b] for g in found], axis=0)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "analysis": "subspace", "run_a": self.run_a, "run_b": self.run_b, "base_model": self.base_model,
            "steps": list(self.steps), "of": self.of, "top": self.top, "seconds": round(self.seconds, 3),
            "mean_by_type": {k: np.round(v, 4).tolist() for k, v in self.mean_by_type().items()},
            "modules": [m.to_dict() for m in self.modules],
        }  # fmt: skip


def analyze_subspace(
    run_a: str | Path | Run,
    run_b: str | Path | Run,
    *,
    of: str = "auto",
    top: int = 64,
    base: str | None = None,
    step_a: int | None = None,
    step_b: int | None = None,
    modules: str | None = None,
    dtype: str = "float32",
    progress: bool = True,
) -> SubspaceReport:
    """φ between the top-``top`` singular subspaces of two runs of one base model, per common module.

    ``of``: "A" (right singular vectors of the LoRA A factors, as in the LoRA paper; LoRA runs only),
    "delta-left" / "delta-right" (of ΔW); "auto" is "delta-left" (see the module docstring for why).
    """
    from loralab.analysis.progress import progress_bar

    start = time.perf_counter()
    run_a, run_b = (r if isinstance(r, Run) else open_run(r) for r in (run_a, run_b))
    if of not in BASES:
        raise AnalysisError(f"--of must be one of {', '.join(BASES)}, got {of!r}")
    if not isinstance(top, int) or top < 1:
        raise AnalysisError(f"--top must be a positive integer, got {top!r}")
    if not same_base(run_a.base_model, run_b.base_model):
        raise AnalysisError(
            f"the runs have different base models ({run_a.name}: {run_a.base_model}, {run_b.name}: {run_b.base_model}); "
            "subspace similarity compares updates of one base model"
        )
    if of == "auto":
        of = "delta-left"
    for run in (run_a, run_b):
        if of == "A" and not run.has_adapter:
            raise AnalysisError(
                f"--of A compares the LoRA A factors, but run {run.folder} is a full fine-tuning run with no adapter; "
                "use --of delta-left or --of delta-right"
            )
    torch_dtype = resolve_dtype(dtype)
    weights = BaseWeights(base or run_a.base_model)
    state_a, state_b = RunState(run_a, weights, step_a, modules), RunState(run_b, weights, step_b, modules)
    in_b = set(state_b.paths)
    common = [p for p in state_a.paths if p in in_b]
    if not common:
        raise AnalysisError(f"no module has an update in both runs ({run_a.name}: {len(state_a)} modules, {run_b.name}: {len(state_b)})")
    results = []
    with progress_bar(len(common), f"subspace {run_a.name} vs {run_b.name}", progress) as bar:
        for path in common:
            U_a = singular_basis(state_a.update(path), of, top, torch_dtype)
            U_b = singular_basis(state_b.update(path), of, top, torch_dtype)
            if U_a.shape[0] != U_b.shape[0]:
                raise AnalysisError(f"{path}: the runs' updates live in spaces of {U_a.shape[0]} and {U_b.shape[0]} dimensions; were they trained on different base models?")
            results.append(ModuleSimilarity(path, U_a.shape[0], subspace_similarity(U_a, U_b), shared_directions(U_a, U_b)))
            bar.update(1)
    return SubspaceReport(
        run_a.name, run_b.name, of, top, results, time.perf_counter() - start, weights.name, (step_a, step_b)
    )
