"""How strongly ΔW amplifies directions of W (Hu et al. 2021, Sec. 7.3, Table 7).

For U: (d_out, r), V: (r, d_in) orthonormal, ‖Uᵀ W Vᵀ‖_F measures how much of W lies in those
directions. Taken for the top-r singular directions of ΔW, of W itself, and of a random matrix,
and set against ‖ΔW‖_F: the amplification factor ‖ΔW‖_F / ‖U_ΔWᵀ W V_ΔWᵀ‖_F is large when ΔW
emphasises directions W hardly uses (about 21.5 for r = 4 on GPT-3's W_q).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from loralab.analysis.errors import AnalysisError
from loralab.analysis.sources import BaseWeights, PathNamed, Run, RunState, Update, open_run
from loralab.analysis.spectrum import resolve_dtype

#: r for full fine-tuning runs when none is given (LoRA runs use each module's own r).
DEFAULT_FULL_RANK = 8


def projection_norm(W: torch.Tensor, U: torch.Tensor, Vh: torch.Tensor) -> float:
    """‖Uᵀ W Vhᵀ‖_F for W: (d_out, d_in), U: (d_out, r), Vh: (r, d_in)."""
    return float(torch.linalg.matrix_norm(U.T @ W @ Vh.T))


def random_directions(d_out: int, d_in: int, r: int, generator: torch.Generator, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """(U: (d_out, r), Vh: (r, d_in)): the top-r singular directions of a Gaussian matrix (Haar-distributed)."""
    U, _ = torch.linalg.qr(torch.randn(d_out, r, generator=generator, dtype=torch.float64))
    V, _ = torch.linalg.qr(torch.randn(d_in, r, generator=generator, dtype=torch.float64))
    return U.to(dtype), V.T.to(dtype)


@dataclass
class ModuleAmplification(PathNamed):
    """One module's row of Table 7: ‖UᵀWVᵀ‖_F for the top-r directions of ΔW, W and a random matrix."""

    path: str
    r: int
    delta_norm: float  # ‖ΔW‖_F
    weight_norm: float  # ‖W‖_F
    delta_projection: float  # ‖U_ΔWᵀ W V_ΔWᵀ‖_F
    weight_projection: float  # ‖U_Wᵀ W V_Wᵀ‖_F = √(σ₁² + … + σ_r²) of W
    random_projection: float

    @property
    def factor(self) -> float | None:
        """‖ΔW‖_F / ‖U_ΔWᵀ W V_ΔWᵀ‖_F."""
        return self.delta_norm / self.delta_projection if self.delta_projection else None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "module_type": self.module_type, "layer": self.layer, "factor": self.factor}


@dataclass
class AmplificationReport:
    run: str
    method: str
    base_model: str
    step: int | None
    seed: int
    modules: list[ModuleAmplification]
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "analysis": "amplification", "run": self.run, "method": self.method, "base_model": self.base_model,
            "step": self.step, "seed": self.seed, "seconds": round(self.seconds, 3),
            "modules": [m.to_dict() for m in self.modules],
        }  # fmt: skip


def module_amplification(
    path: str, W: torch.Tensor, update: Update, r: int, generator: torch.Generator, dtype: torch.dtype = torch.float32
) -> ModuleAmplification:
    """Table 7's numbers for one module; r is capped at ΔW's rank bound."""
    r = min(r, update.rank_bound)
    W = W.to(dtype)
    U, S, Vh = update.svd(dtype)
    weight_sv = torch.linalg.svdvals(W)
    U_rand, Vh_rand = random_directions(W.shape[0], W.shape[1], r, generator, dtype)
    return ModuleAmplification(
        path, r, float(torch.linalg.vector_norm(S)), float(torch.linalg.vector_norm(weight_sv)),
        projection_norm(W, U[:, :r], Vh[:r]), float(torch.linalg.vector_norm(weight_sv[:r])),
        projection_norm(W, U_rand, Vh_rand),
    )  # fmt: skip


def analyze_amplification(
    run: str | Path | Run,
    *,
    base: str | None = None,
    rank: int | None = None,
    step: int | None = None,
    modules: str | None = None,
    seed: int = 0,
    dtype: str = "float32",
    progress: bool = True,
) -> AmplificationReport:
    """Table 7 for every adapted (LoRA) or linear (full fine-tuning) matrix of a run.

    ``rank``: r of the directions compared (default: each module's LoRA r; 8 for full fine-tuning).
    """
    from loralab.analysis.progress import progress_bar

    start = time.perf_counter()
    run = run if isinstance(run, Run) else open_run(run)
    if rank is not None and (isinstance(rank, bool) or not isinstance(rank, int) or rank < 1):
        raise AnalysisError(f"--rank must be a positive integer, got {rank!r}")
    torch_dtype = resolve_dtype(dtype)
    weights = BaseWeights(base or run.base_model)
    state = RunState(run, weights, step, modules)
    generator = torch.Generator().manual_seed(seed)
    results = []
    with progress_bar(len(state), f"amplification {run.name}", progress) as bar:
        for m in state.matrices():
            r = rank or (m.update.rank_bound if run.has_adapter else DEFAULT_FULL_RANK)
            results.append(module_amplification(m.path, m.W, m.update, r, generator, torch_dtype))
            del m
            bar.update(1)
    return AmplificationReport(run.name, run.method, weights.name, step, seed, results, time.perf_counter() - start)
