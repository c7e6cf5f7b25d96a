"""Terminal tables and JSON files of the analyses.

Tables summarise by module type (means over layers; ranks as "50%/90%/99%"), or list every
module with ``per_module``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from loralab.analysis.amplification import AmplificationReport
from loralab.analysis.energy import fraction_key
from loralab.analysis.spectrum import SpectrumReport
from loralab.analysis.subspace import SubspaceReport


def write_json(data: dict[str, Any], path: str | Path) -> Path:
    """Write ``data`` as indented JSON (creating the folder)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    return path


def spectrum_table(report: SpectrumReport, per_module: bool = False) -> str:
    """ΔW's ranks at each energy fraction, W's and W_ft's, ‖ΔW‖/‖W‖ and the relative change of σ(W)."""
    fracs = "/".join(fraction_key(f) for f in report.fractions)
    header = ("module" if per_module else "type", "n", "shape", "bound", f"rank ΔW {fracs}", "rank W", "rank W_ft", "‖ΔW‖/‖W‖", "Δσ(W) rel")

    def row(name: str, group: Sequence) -> tuple[str, ...]:
        ranks = lambda attr: "/".join(_num(_mean([getattr(m, attr)[f] for m in group if getattr(m, attr)])) for f in report.fractions)
        shapes = sorted({m.shape for m in group})
        return (
            name, str(len(group)), "×".join(map(str, shapes[0])) + ("…" if len(shapes) > 1 else ""),
            _num(_mean([m.rank_bound for m in group])), ranks("delta_ranks"), ranks("base_ranks"), ranks("tuned_ranks"),
            _num(_mean([m.relative_norm for m in group])), _num(_mean([m.spectrum_change for m in group])),
        )  # fmt: skip

    title = f"spectrum of ΔW = W_ft − W: {report.run} ({report.method}, base {report.base_model}" + (f", step {report.step}" if report.step is not None else "") + ")"
    return title + "\n" + _render([header, *_rows(report.matrices, per_module, row)])


def training_table(report: SpectrumReport) -> str:
    """ΔW's rank at each energy fraction (mean over modules) and mean ‖ΔW‖_F, by checkpoint."""
    header = ("step", *(f"rank ΔW {fraction_key(f)}" for f in report.fractions), "‖ΔW‖_F")
    rows = [header]
    for point in report.over_training:
        rows.append((
            "final" if point.step is None else str(point.step),
            *(_num(_mean([r[f] for r in point.ranks.values()])) for f in report.fractions),
            _num(_mean(list(point.norms.values()))),
        ))  # fmt: skip
    return "rank of ΔW over training (mean over modules)\n" + _render(rows)


def subspace_table(report: SubspaceReport, per_module: bool = False) -> str:
    """φ(1, 1), φ of the whole top subspaces, mean φ, shared directions, and φ(1, 1) of random subspaces."""
    header = ("module" if per_module else "type", "n", "k_a×k_b", "φ(1,1)", "φ(k_a,k_b)", "mean φ", "shared dirs", "random φ(1,1)")

    def row(name: str, group: Sequence) -> tuple[str, ...]:
        summaries = [m.summary() for m in group]
        mean = lambda key: _num(_mean([s[key] for s in summaries]))
        return (
            name, str(len(group)), "×".join(map(str, group[0].phi.shape)), mean("phi_1_1"), mean("phi_top"),
            mean("phi_mean"), mean("shared_directions"), mean("random_phi_1_1"),
        )  # fmt: skip

    title = f"subspace similarity φ ({report.of} singular vectors, top {report.top}): {report.run_a} vs {report.run_b}"
    return title + "\n" + _render([header, *_rows(report.modules, per_module, row)])


def amplification_table(report: AmplificationReport, per_module: bool = False) -> str:
    """Table 7 of the LoRA paper: ‖UᵀWVᵀ‖_F for the top-r directions of ΔW, W and random, and the factor."""
    header = ("module" if per_module else "type", "n", "r", "‖W‖_F", "‖ΔW‖_F", "‖UᵀWVᵀ‖ ΔW", "‖UᵀWVᵀ‖ W", "‖UᵀWVᵀ‖ random", "factor")

    def row(name: str, group: Sequence) -> tuple[str, ...]:
        mean = lambda attr: _num(_mean([getattr(m, attr) for m in group]))
        return (
            name, str(len(group)), mean("r"), mean("weight_norm"), mean("delta_norm"), mean("delta_projection"),
            mean("weight_projection"), mean("random_projection"), mean("factor"),
        )  # fmt: skip

    title = f"amplification: {report.run} ({report.method}, base {report.base_model}); factor = ‖ΔW‖_F / ‖U_ΔWᵀ W V_ΔWᵀ‖_F"
    return title + "\n" + _render([header, *_rows(report.modules, per_module, row)])


def _rows(items: Sequence, per_module: bool, row: Callable) -> list[tuple[str, ...]]:
    if per_module:
        return [row(m.path, [m]) for m in items]
    groups: dict[str, list] = {}
    for m in items:
        groups.setdefault(m.module_type, []).append(m)
    return [row(kind, group) for kind, group in groups.items()]


def _mean(values: Sequence[float | None]) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e6 else f"{value:.3g}"


def _render(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)
