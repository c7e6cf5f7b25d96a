"""A metric against one varied key, one line per value of another (e.g. accuracy vs rank, LoRA vs rsLoRA).

Points are groups' final values (means over seeds, with their standard errors). Over the keys in
``best_over`` the best group is taken at each (x, line) — "each rule at its best learning rate" —
and its value of those keys is written next to the point. Keys that vary but are neither ``x``,
``by``, ``best_over`` nor fixed by ``where`` split the lines further, so no line mixes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from loralab.studies.options import AxisPlot
from loralab.studies.summary import SEED, GroupValue, as_float, text


@dataclass(frozen=True)
class Point:
    x: str
    mean: float
    stderr: float
    chosen: dict[str, str]  # best_over key → the value that was best here


def axis_series(spec: AxisPlot, groups: list[GroupValue], higher_is_better: bool, varied: list[str]) -> dict[str, list[Point]]:
    """line label → its points in x order (numeric x sorted as numbers)."""
    wanted = {k: text(v) for k, v in spec.where}
    rest = [k for k in varied if k not in (spec.x, spec.by, SEED, *spec.best_over, *wanted)]
    best: dict[tuple[str, str], GroupValue] = {}
    for g in groups:
        if any(text(g.values.get(k)) != v for k, v in wanted.items()):
            continue
        label_parts = ([f"{short_key(spec.by)}={text(g.values.get(spec.by))}"] if spec.by else []) + [
            f"{short_key(k)}={text(g.values.get(k))}" for k in rest]  # fmt: skip
        key = (", ".join(label_parts) or spec.metric, text(g.values.get(spec.x)))
        current = best.get(key)
        better = current is None or (g.mean > current.mean if higher_is_better else g.mean < current.mean)
        if better:
            best[key] = g
    lines: dict[str, list[Point]] = {}
    for (label, x), g in best.items():
        chosen = {k: text(g.values.get(k)) for k in spec.best_over}
        lines.setdefault(label, []).append(Point(x, g.mean, g.stderr, chosen))
    for points in lines.values():
        points.sort(key=lambda p: (as_float(p.x) is None, as_float(p.x) or 0.0, p.x))
    return dict(sorted(lines.items()))


def plot_axis(spec: AxisPlot, lines: dict[str, list[Point]], path: str | Path, title: str = "") -> Path:
    """Error bars (±1 standard error) through each line's points; log x for positive numbers spanning ≥ 10×."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    numeric = all(as_float(p.x) is not None for points in lines.values() for p in points)
    xs_all = sorted({p.x for points in lines.values() for p in points}, key=lambda v: as_float(v) if numeric else v)  # type: ignore[arg-type,return-value]
    position = (lambda v: as_float(v)) if numeric else (lambda v: xs_all.index(v))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, points in lines.items():
        xs = [position(p.x) for p in points]
        ax.errorbar(xs, [p.mean for p in points], yerr=[p.stderr for p in points], marker="o", capsize=3, label=label)
        for p, x in zip(points, xs):
            if p.chosen:
                note = ", ".join(f"{short_key(k)}={v}" for k, v in p.chosen.items())
                ax.annotate(note, (x, p.mean), textcoords="offset points", xytext=(4, 4), fontsize=7)
    values = [as_float(v) for v in xs_all]
    if numeric and all(v is not None and v > 0 for v in values) and max(values) / min(values) >= 10:  # type: ignore[type-var,operator]
        ax.set_xscale("log", base=2 if all(float(v).is_integer() for v in values) else 10)  # type: ignore[arg-type]
        ax.set_xticks(values, xs_all)  # type: ignore[arg-type]
    elif not numeric:
        ax.set_xticks(range(len(xs_all)), xs_all, rotation=20, fontsize=8)
    ax.set_xlabel(spec.x)
    ax.set_ylabel(f"{spec.task} {spec.metric_name} (final; ±1 s.e.)")
    best = f", best over {', '.join(spec.best_over)}" if spec.best_over else ""
    return finish_figure(fig, ax, spec, title or f"{spec.metric} vs {spec.x}{best}", len(lines), path)


def finish_figure(fig, ax, spec: AxisPlot, title: str, lines: int, path: str | Path) -> Path:
    """Title (with the ``where`` filter), grid, a legend when there is more than one line, saved as PNG."""
    import matplotlib.pyplot as plt

    fixed = f", {', '.join(f'{k}={v}' for k, v in spec.where)}" if spec.where else ""
    ax.set_title(title + fixed, fontsize=10)
    ax.grid(alpha=0.3)
    if lines > 1 or spec.by:
        ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def axis_table(spec: AxisPlot, lines: dict[str, list[Point]]) -> list[str]:
    """Markdown lines: one row per line and x."""
    header = ["line", spec.x, f"{spec.metric} (mean ± s.e.)", *spec.best_over]
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, points in lines.items():
        for p in points:
            out.append("| " + " | ".join([label, p.x, f"{p.mean:.3f} ± {p.stderr:.3f}", *p.chosen.values()]) + " |")
    return out


def short_key(key: str | None) -> str:
    """The last part of a dotted recipe key: lora.r → r."""
    return (key or "").rsplit(".", 1)[-1]
