"""Learning curves of all trials in one figure: each metric against training steps, one panel per metric."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loralab.studies.summary import as_float


def curve_metrics(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(task, first metric of the task) measured at two or more steps of some trial, targets first."""
    steps: dict[tuple[str, str, str], set[int]] = {}
    domain: dict[tuple[str, str], str] = {}
    for r in rows:
        if as_float(r.get("value")) is None:
            continue
        steps.setdefault((r["trial"], r["task"], r["metric"]), set()).add(int(r["step"]))
        domain[(r["task"], r["metric"])] = r.get("domain") or ""
    found = {(t, m) for (_, t, m), s in steps.items() if len(s) > 1}
    first = {t: m for t, m in reversed([tm for tm in domain if tm in found])}  # a task's first metric (accuracy, not strict)
    return sorted(first.items(), key=lambda tm: (domain[tm] != "target", tm))


def plot_curves(rows: list[dict[str, Any]], path: str | Path, title: str = "") -> Path | None:
    """One panel per metric (at most 4), one line per trial; None when no trial has a curve."""
    metrics = curve_metrics(rows)[:4]
    if not metrics:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(metrics), figsize=(4.6 * len(metrics), 4), squeeze=False)
    trials = list(dict.fromkeys(r["trial"] for r in rows))
    for ax, (task, metric) in zip(axes[0], metrics):
        for trial in trials:
            points = sorted((int(r["step"]), float(r["value"])) for r in rows
                            if r["trial"] == trial and r.get("task") == task and r.get("metric") == metric and as_float(r.get("value")) is not None)  # fmt: skip
            if points:
                ax.plot([p[0] for p in points], [p[1] for p in points], marker="o" if len(points) <= 20 else None, markersize=3, linewidth=1.1, label=trial)
        ax.set_xlabel("optimiser step")
        ax.set_ylabel(f"{task} {metric}")
        ax.grid(alpha=0.3)
    if len(trials) <= 16:
        axes[0][0].legend(fontsize=7, loc="best")
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.suptitle(title or "learning curves", fontsize=10)
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
