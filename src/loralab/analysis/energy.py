"""Rank at a fraction of energy: how many singular values explain a share of ‖M‖²_F.

For singular values σ₁ ≥ σ₂ ≥ … the energy is Σ σᵢ² = ‖M‖²_F, and
rank_at(σ, f) = min{k : Σ_{i≤k} σᵢ² ≥ f · Σ_i σᵢ²} (0 for M = 0).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from loralab.analysis.errors import AnalysisError

DEFAULT_FRACTIONS: tuple[float, ...] = (0.5, 0.9, 0.99)
#: Relative slack on the threshold, so that rounding in the cumulative sum never adds one to an exact tie.
_SLACK = 1e-9


def check_fractions(fractions: Iterable[float]) -> tuple[float, ...]:
    """The fractions as a sorted tuple, each in (0, 1]."""
    out = tuple(sorted(float(f) for f in fractions))
    if not out or not all(0 < f <= 1 for f in out):
        raise AnalysisError(f"energy fractions must be numbers in (0, 1], got {list(fractions)}")
    return out


def energy_ranks(singular_values: Sequence[float] | np.ndarray, fractions: Iterable[float] = DEFAULT_FRACTIONS) -> dict[float, int]:
    """{f: rank_at(σ, f)} for each fraction f; σ in any order (it is sorted), computed in float64."""
    s = np.sort(np.abs(np.asarray(singular_values, dtype=np.float64)))[::-1]
    cumulative = np.cumsum(s * s)
    total = cumulative[-1] if len(cumulative) else 0.0
    out = {}
    for f in check_fractions(fractions):
        if total <= 0:
            out[f] = 0
            continue
        k = int(np.searchsorted(cumulative, f * total * (1 - _SLACK), side="left")) + 1
        out[f] = min(k, len(s))
    return out


def rank_at(singular_values: Sequence[float] | np.ndarray, fraction: float = 0.9) -> int:
    """The smallest k whose top-k singular values hold ``fraction`` of Σ σᵢ²."""
    return energy_ranks(singular_values, (fraction,))[float(fraction)]


def fraction_key(fraction: float) -> str:
    """The label of a fraction in tables and JSON: 0.9 → "90%", 0.995 → "99.5%"."""
    return f"{fraction * 100:g}%"
