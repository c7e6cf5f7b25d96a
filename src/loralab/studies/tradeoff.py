"""Learning vs forgetting across a study's trials (Biderman et al. 2024, Fig. 1 on our models).

Each trial is a path through its evaluation points in the plane (forgetting, learning): x a source
metric oriented so that larger is worse (KL to the base if measured, else perplexity, else the
first source metric), y a target metric (the first one). A trial's final point is on the Pareto
front when no other final point learns at least as much while forgetting no more, better in one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

SOURCE_PREFERENCE = ("kl_to_base", "perplexity")


@dataclass(frozen=True)
class Axis:
    task: str
    metric: str
    higher_is_better: bool

    @property
    def label(self) -> str:
        return f"{self.task} {self.metric}"


@dataclass(frozen=True)
class TradeOff:
    learning: Axis
    forgetting: Axis
    paths: dict[str, list[tuple[int, float, float]]]  # trial → [(step, forgetting, learning)] in step order
    front: list[str]  # trials whose final point is Pareto-optimal, by forgetting


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def trade_off(rows: list[dict[str, Any]]) -> TradeOff | None:
    """The learning/forgetting paths of ``results.csv`` rows, or None without a target and a source metric."""
    measured = [r for r in rows if r.get("metric") not in (None, "") and r.get("value") not in (None, "")]
    targets = [r for r in measured if r["domain"] == "target"]
    sources = [r for r in measured if r["domain"] == "source"]
    if not targets or not sources:
        return None
    source_metric = next((m for m in SOURCE_PREFERENCE if any(r["metric"] == m for r in sources)), sources[0]["metric"])
    first_source = next(r for r in sources if r["metric"] == source_metric)
    learning = Axis(targets[0]["task"], targets[0]["metric"], _truthy(targets[0]["higher_is_better"]))
    forgetting = Axis(first_source["task"], source_metric, _truthy(first_source["higher_is_better"]))

    def values(axis: Axis) -> dict[tuple[str, int], float]:
        return {(r["trial"], int(r["step"])): float(r["value"]) for r in measured
                if r["task"] == axis.task and r["metric"] == axis.metric}  # fmt: skip

    ys, xs = values(learning), values(forgetting)
    paths: dict[str, list[tuple[int, float, float]]] = {}
    for (trial, step) in sorted(set(ys) & set(xs), key=lambda k: k[1]):
        x = xs[(trial, step)] if not forgetting.higher_is_better else -xs[(trial, step)]
        y = ys[(trial, step)] if learning.higher_is_better else -ys[(trial, step)]
        paths.setdefault(trial, []).append((step, x, y))
    finals = {t: p[-1] for t, p in paths.items()}
    front = [t for t, (_, x, y) in finals.items()
             if not any(ox <= x and oy >= y and (ox < x or oy > y) for o, (_, ox, oy) in finals.items() if o != t)]  # fmt: skip
    return TradeOff(learning, forgetting, paths, sorted(front, key=lambda t: finals[t][1]))


def plot_trade_off(result: TradeOff, path: str | Path, title: str = "") -> Path:
    """One line per trial through its evaluation points, its final point marked, the front dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 5))
    for trial, points in result.paths.items():
        xs, ys = [p[1] for p in points], [p[2] for p in points]
        line = ax.plot(xs, ys, marker="o", markersize=3, linewidth=1.2, label=trial)[0]
        ax.plot(xs[-1:], ys[-1:], marker="*", markersize=12, color=line.get_color())
    front = [result.paths[t][-1] for t in result.front]
    if len(front) > 1:
        ax.plot([p[1] for p in front], [p[2] for p in front], "k--", linewidth=1, label="Pareto front")
    sign_x = "" if not result.forgetting.higher_is_better else "−"
    sign_y = "" if result.learning.higher_is_better else "−"
    positive = [abs(p[1]) for points in result.paths.values() for p in points if p[1] != 0]
    log_note = ""
    if positive and max(positive) / min(positive) >= 100:  # a diverged trial would squash the others against 0
        ax.set_xscale("symlog", linthresh=min(positive))
        log_note = ", log scale"
    ax.set_xlabel(f"forgetting: {sign_x}{result.forgetting.label} (lower is better{log_note})")
    ax.set_ylabel(f"learning: {sign_y}{result.learning.label} (higher is better)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    ax.set_title(title or "learning vs forgetting (each line: one trial through its evaluations; ★ final)")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def trade_off_section(rows: list[dict[str, Any]], varied: list[str]) -> list[str]:
    """report.md's section: each trial's final learning and forgetting, the Pareto front."""
    result = trade_off(rows)
    if result is None:
        return ["No trial has both a target and a source metric yet: nothing to compare.", ""]
    finals = {t: p[-1] for t, p in result.paths.items()}
    lines = ["## Learning vs forgetting", "",
             f"Learning: **{result.learning.label}**; forgetting: **{result.forgetting.label}**. "
             "`learning_vs_forgetting.png` draws each trial's path.", ""]  # fmt: skip
    varied_of = {r["trial"]: r for r in rows}
    header = ["trial", *varied, "final step", result.learning.label, result.forgetting.label, "on the front"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for trial, (step, x, y) in sorted(finals.items(), key=lambda kv: -kv[1][2]):
        y_shown = y if result.learning.higher_is_better else -y
        x_shown = x if not result.forgetting.higher_is_better else -x
        cells = [trial, *(_cell(varied_of[trial].get(k)) for k in varied), str(step), f"{y_shown:.4g}",
                 f"{x_shown:.4g}", "yes" if trial in result.front else ""]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return lines + ["", f"Pareto front (least forgetting first): {', '.join(result.front)}.", ""]


def _cell(value: Any) -> str:
    return "" if value is None else str(value)
