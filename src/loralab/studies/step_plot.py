"""A metric along training, one curve per group (``x: step`` in a study's plots): e.g. the training loss of
every rank, LoRA in one figure and rsLoRA in another, as in the rsLoRA write-up's first figure.

A curve is a group (a trial over its seeds); its value at a step is the mean over the seeds that measured it
there. Curves are named by ``by`` and the keys that differ between them but are not fixed by ``where`` (by the
group's name where those do not tell groups apart). Curves of more than
:data:`SMOOTH_ABOVE` points are drawn faint, with a centred moving mean over them (about a tenth of the points,
an odd number) drawn bold; the table gives the values as measured.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from loralab.studies.axis_plot import finish_figure, short_key
from loralab.studies.options import AxisPlot
from loralab.studies.summary import SEED, as_float, text

SMOOTH_ABOVE = 20  # points of a curve beyond which a moving mean is drawn over it
TABLE_POINTS = 6  # steps per curve in the report's table


def step_series(spec: AxisPlot, rows: list[dict[str, Any]], varied: list[str]) -> dict[str, list[tuple[int, float]]]:
    """curve label → [(step, mean over the group's seeds)] in step order, from results.csv rows."""
    wanted = {k: text(v) for k, v in spec.where}
    rest = [k for k in varied if k not in (spec.by, SEED, *wanted)]
    chosen = [r for r in rows if r.get("task") == spec.task and r.get("metric") == spec.metric_name
              and as_float(r.get("value")) is not None and all(text(r.get(k)) == v for k, v in wanted.items())]  # fmt: skip
    rest = [k for k in rest if len({text(r.get(k)) for r in chosen}) > 1]  # a key the same for every curve names none
    labels: dict[str, str] = {}  # group → its curve's label
    sums: dict[str, dict[int, list[float]]] = {}  # group → step → its seeds' values
    for r in chosen:
        group = r.get("group") or r.get("trial") or ""
        parts = ([f"{short_key(spec.by)}={text(r.get(spec.by))}"] if spec.by else []) + [f"{short_key(k)}={text(r.get(k))}" for k in rest]
        labels[group] = ", ".join(parts) or group or spec.metric
        sums.setdefault(group, {}).setdefault(int(r["step"]), []).append(float(r["value"]))
    taken = list(labels.values())
    curves = {(labels[g] if taken.count(labels[g]) == 1 else g): sorted((step, sum(v) / len(v)) for step, v in by_step.items())
              for g, by_step in sums.items()}  # fmt: skip
    return dict(sorted(curves.items(), key=lambda item: _natural(item[0])))


def plot_steps(spec: AxisPlot, curves: dict[str, list[tuple[int, float]]], path: str | Path, title: str = "") -> Path:
    """One line per curve against the optimiser step; a moving mean over long, noisy curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, points in curves.items():
        steps, values = [p[0] for p in points], [p[1] for p in points]
        if len(points) > SMOOTH_ABOVE:
            faint = ax.plot(steps, values, linewidth=0.8, alpha=0.3)[0]
            ax.plot(steps, moving_mean(values, max(3, len(values) // 10) | 1), linewidth=1.8, color=faint.get_color(), label=label)
        else:
            ax.plot(steps, values, marker="o", markersize=3, linewidth=1.3, label=label)
    ax.set_xlabel("optimiser step")
    ax.set_ylabel(f"{spec.task} {spec.metric_name}")
    return finish_figure(fig, ax, spec, title or f"{spec.metric} along training", len(curves), path)


def step_table(spec: AxisPlot, curves: dict[str, list[tuple[int, float]]]) -> list[str]:
    """Markdown lines: per curve, its values at up to TABLE_POINTS evenly spaced measured steps, the last included."""
    out = ["| curve | " + f"{spec.metric} at step: value |", "|---|---|"]
    for label, points in curves.items():
        picked = sorted({round(i * (len(points) - 1) / max(1, TABLE_POINTS - 1)) for i in range(TABLE_POINTS)})
        out.append(f"| {label} | " + ", ".join(f"{points[i][0]}: {points[i][1]:.4g}" for i in picked) + " |")
    return out


def moving_mean(values: list[float], window: int) -> list[float]:
    """Each value replaced by the mean of the ``window`` (odd) values centred on it (fewer at the ends)."""
    half = window // 2
    means = []
    for i in range(len(values)):
        around = values[max(0, i - half) : i + half + 1]
        means.append(sum(around) / len(around))
    return means


def _natural(label: str) -> list:
    """Sort key: numbers in a label compared as numbers (r=4 before r=16)."""
    return [(0, float(part)) if as_float(part) is not None else (1, part) for part in re.split(r"([-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?)", label)]
