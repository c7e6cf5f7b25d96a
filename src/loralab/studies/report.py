"""A study's outputs from its ``results.csv`` rows: report.md and the plots beside it.

The same function serves ``loralab study`` (after every trial) and ``loralab compare`` (runs made
separately), so both give the same tables and pictures:
- ``learning_vs_forgetting.png`` (:mod:`.tradeoff`), ``learning_curves.png`` (:mod:`.curves`),
- one PNG per requested axis plot (:mod:`.axis_plot`; along training, ``x: step``: :mod:`.step_plot`),
- report.md: the trade-off table and Pareto front, each group's final target value (mean ± spread
  over seeds), the sensitivity of the target to each varied key, the axis plots' tables, the
  weight-update analyses, failures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loralab.studies.axis_plot import axis_series, axis_table, plot_axis
from loralab.studies.curves import plot_curves
from loralab.studies.options import AxisPlot
from loralab.studies.step_plot import plot_steps, step_series, step_table
from loralab.studies.summary import SEED, GroupValue, group_values, higher_is_better, sensitivity, text
from loralab.studies.tradeoff import plot_trade_off, trade_off, trade_off_section


FINISHED = ("done", "done before")


@dataclass
class ReportInputs:
    name: str
    rows: list[dict[str, Any]]
    varied: list[str]
    status: dict[str, dict[str, Any]] = field(default_factory=dict)
    center: dict[str, Any] = field(default_factory=dict)
    plots: tuple[AxisPlot, ...] = ()
    analyses: list[str] = field(default_factory=list)  # markdown lines from studies/analyses.py
    description: str = ""


def target_metric(rows: list[dict[str, Any]]) -> tuple[str, str] | None:
    """The first target (task, metric) measured, as the trade-off plot uses it."""
    for r in rows:
        if r.get("domain") == "target" and r.get("value") not in (None, ""):
            return r["task"], r["metric"]
    return None


def write_report(inputs: ReportInputs, folder: Path, write_text) -> list[Path]:
    """Write report.md and the plots into ``folder``; ``write_text(path, text)`` writes atomically."""
    rows, varied = inputs.rows, inputs.varied
    written: list[Path] = []
    lines = [f"# Study `{inputs.name}`", ""] + ([inputs.description, ""] if inputs.description else [])
    lines += trade_off_section(rows, varied)
    paths = trade_off(rows)
    if paths is not None and paths.paths:
        written.append(plot_trade_off(paths, folder / "learning_vs_forgetting.png", f"{inputs.name}: learning vs forgetting"))
    curves = plot_curves(rows, folder / "learning_curves.png", f"{inputs.name}: learning curves")
    if curves is not None:
        written.append(curves)
        lines += ["`learning_curves.png`: every trial's metrics against training steps.", ""]
    finished = [r for r in rows if r.get("status") in FINISHED]  # finals, seeds, sensitivity: finished trials only
    target = target_metric(rows)
    if target is not None:
        groups = group_values(finished, *target, varied)
        lines += _groups_section(groups, target, varied)
        lines += _sensitivity_section(groups, target, varied, inputs.center)
    for spec in inputs.plots:
        if spec.over_steps:
            lines += _steps_section(spec, rows, varied, folder, written)  # as learning_curves.png: unfinished trials too
            continue
        groups = group_values(finished, spec.task, spec.metric_name, varied)
        lines_of = axis_series(spec, groups, higher_is_better(rows, spec.task, spec.metric_name), varied)
        if not lines_of:
            continue
        png = folder / f"{spec.stem}.png"
        written.append(plot_axis(spec, lines_of, png))
        lines += [f"## {spec.metric} vs {spec.x}", "", f"![{spec.stem}]({png.name})", ""] + axis_table(spec, lines_of) + [""]
    if inputs.analyses:
        lines += ["## Weight updates", ""] + inputs.analyses + [""]
    failed = {t: s for t, s in inputs.status.items() if s.get("status") == "failed"}
    if failed:
        lines += ["Failed trials:", ""] + [f"- `{t}`: {s.get('error', '')}" for t, s in failed.items()] + [""]
    write_text(folder / "report.md", "\n".join(lines))
    return [folder / "report.md", *written]


def _steps_section(spec: AxisPlot, rows: list[dict[str, Any]], varied: list[str], folder: Path, written: list[Path]) -> list[str]:
    curves = step_series(spec, rows, varied)
    if not curves:
        return []
    png = folder / f"{spec.stem}.png"
    written.append(plot_steps(spec, curves, png))
    fixed = f" ({', '.join(f'{k}={v}' for k, v in spec.where)})" if spec.where else ""
    return [f"## {spec.metric} along training{fixed}", "", f"![{spec.stem}]({png.name})", ""] + step_table(spec, curves) + [""]


def _groups_section(groups: list[GroupValue], target: tuple[str, str], varied: list[str]) -> list[str]:
    if not any(g.seeds > 1 for g in groups):
        return []
    label = "/".join(target)
    keys = [k for k in varied if k != "train.seed"]
    out = [f"## Over seeds: final {label}", "", "| group | " + " | ".join(keys) + " | seeds | mean ± s.e. | spread (s.d.) |",
           "|" + "---|" * (len(keys) + 4)]  # fmt: skip
    for g in sorted(groups, key=lambda g: -g.mean):
        cells = [g.group, *(text(g.values.get(k)) for k in keys), str(g.seeds), f"{g.mean:.3f} ± {g.stderr:.3f}", f"{g.spread:.3f}"]
        out.append("| " + " | ".join(cells) + " |")
    return out + [""]


def _sensitivity_section(groups: list[GroupValue], target: tuple[str, str], varied: list[str], center: dict[str, Any]) -> list[str]:
    found = sensitivity(groups, varied, center)
    compared = {s.key for s in found}
    tangled = [k for k in varied if k != SEED and k not in compared and not center
               and len({text(g.values.get(k)) for g in groups}) > 1]  # fmt: skip
    note = [f"Not compared: {', '.join(tangled)} — no two of a key's values were run under the same other settings, "
            "so their effects cannot be told apart from those of the keys that change with them.", ""] if tangled else []
    if not found:
        return [f"## Sensitivity of the final {'/'.join(target)}", "", *note] if note else []
    out = [f"## Sensitivity of the final {'/'.join(target)}", "",
           "Largest effect first: the range and standard deviation of the mean at each value of the key "
           "(one at a time: the other keys at the centre; marginal: averaged over the combinations of the other keys "
           "that every compared value was run at, so trials beside the grid may be left out).", "",
           "| key | design | range | s.d. | mean at each value |", "|---|---|---|---|---|"]  # fmt: skip
    for s in found:
        means = ", ".join(f"{v}: {m:.3f}" for v, m in s.means.items())
        design = s.design if s.design != "marginal" or s.used == s.total else f"{s.design}, {s.used} of {s.total} groups"
        out.append(f"| {s.key} | {design} | {s.range:.3f} | {s.std:.3f} | {means} |")
    return out + [""] + note
