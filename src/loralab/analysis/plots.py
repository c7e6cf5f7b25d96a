"""PNG plots of the analyses (matplotlib's Agg canvas; pyplot and its global state are never touched).

``plot_spectra``: σ(ΔW) of every layer per module type, and σ(W) vs σ(W_ft) at the middle layer.
``plot_rank_per_layer``: ΔW's rank at 90% energy by layer and module type (LoRA: r dashed).
``plot_rank_over_training``: the same, mean over layers, by checkpoint.
``plot_subspace``: φ heat maps per module type (one layer, or the mean over layers), as in the LoRA paper's Fig. 3.
``plot_amplification``: the amplification factor by layer and module type.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from loralab.analysis.amplification import AmplificationReport
from loralab.analysis.energy import fraction_key
from loralab.analysis.spectrum import SpectrumReport
from loralab.analysis.subspace import SubspaceReport


def _figure(columns: int, rows: int = 1, width: float = 3.2, height: float = 2.8):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width * columns, height * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False)
    return figure, axes


def _save(figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    return path


def _by_type(items: Sequence) -> dict[str, list]:
    groups: dict[str, list] = {}
    for item in items:
        groups.setdefault(item.module_type, []).append(item)
    return groups


def _layer(item) -> int:
    return -1 if item.layer is None else item.layer


def middle_layer(items: Sequence) -> int | None:
    """The middle one of the block indices present (None if no module has one)."""
    layers = sorted({item.layer for item in items if item.layer is not None})
    return layers[len(layers) // 2] if layers else None


def plot_spectra(report: SpectrumReport, path: str | Path) -> Path:
    """Top row: σᵢ(ΔW) against i for every layer (colour: depth). Bottom: σ(W), σ(W_ft) at the middle layer."""
    from matplotlib import colormaps

    groups = _by_type(report.matrices)
    has_weights = any(m.base_sv is not None for m in report.matrices)
    figure, axes = _figure(len(groups), 2 if has_weights else 1)
    layers = sorted({_layer(m) for m in report.matrices})
    colour = lambda m: colormaps["viridis"](layers.index(_layer(m)) / max(1, len(layers) - 1))
    middle = middle_layer(report.matrices)
    for column, (kind, group) in enumerate(groups.items()):
        ax = axes[0, column]
        for m in group:
            ax.plot(np.arange(1, len(m.delta_sv) + 1), np.maximum(m.delta_sv, 1e-12), color=colour(m), lw=0.8)
        ax.set(yscale="log", title=f"σ(ΔW) {kind}", xlabel="i")
        if has_weights:
            ax = axes[1, column]
            pick = next((m for m in group if m.layer == middle and m.base_sv is not None), None) or group[len(group) // 2]
            if pick.base_sv is not None:
                ax.plot(np.arange(1, len(pick.base_sv) + 1), pick.base_sv, label="W", lw=1.2)
                ax.plot(np.arange(1, len(pick.tuned_sv) + 1), pick.tuned_sv, "--", label="W_ft", lw=1.2)
                ax.plot(np.arange(1, len(pick.delta_sv) + 1), np.maximum(pick.delta_sv, 1e-12), label="ΔW", lw=1.0)
                ax.set(yscale="log", title=f"{kind}, layer {pick.layer}", xlabel="i")
                ax.legend(fontsize=7)
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    scale = ScalarMappable(Normalize(min(layers), max(max(layers), min(layers) + 1)), colormaps["viridis"])
    figure.colorbar(scale, ax=list(axes[0]), shrink=0.8, label="layer", pad=0.01)
    figure.suptitle(f"singular values: {report.run} ({report.method})")
    return _save(figure, path)


def plot_rank_per_layer(report: SpectrumReport, path: str | Path, fraction: float = 0.9) -> Path:
    """ΔW's rank at ``fraction`` of its energy against layer, one line per module type; LoRA's r dashed."""
    fraction = min(report.fractions, key=lambda f: abs(f - fraction))
    figure, axes = _figure(1, width=6, height=3.6)
    ax = axes[0, 0]
    for kind, group in _by_type(report.matrices).items():
        group = sorted(group, key=_layer)
        ax.plot([_layer(m) for m in group], [m.delta_ranks[fraction] for m in group], "o-", ms=3, label=kind)
    if report.method != "full":
        ax.axhline(max(m.rank_bound for m in report.matrices), color="k", ls="--", lw=0.8, label="r")
    ax.set(xlabel="layer", ylabel=f"rank at {fraction_key(fraction)} energy", title=f"rank of ΔW: {report.run} ({report.method})")
    ax.legend(fontsize=7, ncol=2)
    return _save(figure, path)


def plot_rank_over_training(report: SpectrumReport, path: str | Path, fraction: float = 0.9) -> Path:
    """ΔW's rank at ``fraction`` energy (mean over layers) per module type, by checkpoint."""
    fraction = min(report.fractions, key=lambda f: abs(f - fraction))
    points = report.over_training
    figure, axes = _figure(1, width=6, height=3.6)
    ax = axes[0, 0]
    x = np.arange(len(points))
    kinds = _by_type(report.matrices) or {}
    for kind in kinds:
        values = [np.mean([r[fraction] for p_, r in point.ranks.items() if p_.rsplit(".", 1)[-1] == kind] or [np.nan]) for point in points]
        ax.plot(x, values, "o-", ms=3, label=kind)
    ax.set_xticks(x, ["final" if p.step is None else str(p.step) for p in points], rotation=45, fontsize=7)
    ax.set(xlabel="step", ylabel=f"mean rank at {fraction_key(fraction)}", title=f"rank of ΔW over training: {report.run}")
    ax.legend(fontsize=7, ncol=2)
    return _save(figure, path)


def plot_subspace(report: SubspaceReport, path: str | Path, layer: int | None = None, mean: bool = False) -> Path:
    """Heat maps of φ(i, j) per module type: at ``layer`` (default: the middle one), or the mean over layers."""
    from matplotlib.ticker import MaxNLocator

    if mean:
        grids = report.mean_by_type()
        title = "mean over layers"
    else:
        layer = middle_layer(report.modules) if layer is None else layer
        grids = {m.module_type: m.phi for m in report.modules if m.layer == layer}
        if not grids:  # e.g. no block indices, or a layer no module has
            grids = {m.module_type: m.phi for m in report.modules}
        title = f"layer {layer}"
    figure, axes = _figure(len(grids), width=3.4, height=3.0)
    image = None
    for ax, (kind, phi) in zip(axes[0], grids.items()):
        image = ax.imshow(phi, vmin=0, vmax=1, cmap="viridis", aspect="auto", origin="upper",
                          extent=(0.5, phi.shape[1] + 0.5, phi.shape[0] + 0.5, 0.5))  # fmt: skip
        ax.set(title=kind, xlabel=f"j ({report.run_b})", ylabel=f"i ({report.run_a})")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    if image is not None:
        figure.colorbar(image, ax=list(axes[0]), shrink=0.8, label="φ(i, j)")
    figure.suptitle(f"subspace similarity ({report.of}), {title}")
    return _save(figure, path)


def plot_amplification(report: AmplificationReport, path: str | Path) -> Path:
    """‖ΔW‖_F / ‖U_ΔWᵀ W V_ΔWᵀ‖_F against layer, one line per module type."""
    figure, axes = _figure(1, width=6, height=3.6)
    ax = axes[0, 0]
    for kind, group in _by_type(report.modules).items():
        group = sorted(group, key=_layer)
        ax.plot([_layer(m) for m in group], [m.factor or np.nan for m in group], "o-", ms=3, label=kind)
    ax.set(xlabel="layer", ylabel="amplification factor", yscale="log", title=f"amplification: {report.run} ({report.method})")
    ax.legend(fontsize=7, ncol=2)
    return _save(figure, path)
