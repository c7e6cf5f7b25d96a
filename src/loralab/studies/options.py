"""A study file's ``analyze`` and ``plots`` sections, validated.

    analyze:
      spectrum: all                                   # or [trial, ...]: rank and spectrum of ΔW
      subspace: {pairs: [[a, b]], of: [A, delta-left]} # φ between two trials' top directions
    plots:
      - {metric: arith/accuracy, x: lora.r, by: lora.rslora, best_over: [optimizer.lr], where: {}}
      - {metric: train/loss, x: step, by: lora.r, where: {lora.rslora: true}}

A metric is ``task/metric`` as in results.csv (``arith/accuracy``, ``source-kl/kl_to_base``, ``train/loss``).
``x: step`` draws the metric along training, a curve per group, instead of final values against a key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from loralab.errors import ConfigError

SUBSPACE_BASES = ("auto", "A", "delta-left", "delta-right")
STEP = "step"  # the x of a plot along training


@dataclass(frozen=True)
class Analyses:
    spectrum: tuple[str, ...] = ()  # trial names
    subspace_pairs: tuple[tuple[str, str], ...] = ()
    subspace_of: tuple[str, ...] = ("auto",)


@dataclass(frozen=True)
class AxisPlot:
    """``metric`` at each trial's last evaluation against ``x``, one line per value of ``by``;
    over ``best_over`` keys the best trial is taken, ``where`` keeps only trials with those values."""

    metric: str
    x: str
    by: str | None = None
    best_over: tuple[str, ...] = ()
    where: tuple[tuple[str, Any], ...] = ()

    @property
    def over_steps(self) -> bool:
        """Whether this plot draws curves along training (``x: step``) rather than final values against a key."""
        return self.x == STEP

    @property
    def recipe_keys(self) -> tuple[str, ...]:
        """The recipe keys this plot names (each must be one the trials vary)."""
        named = (None if self.over_steps else self.x, self.by, *self.best_over, *dict(self.where))
        return tuple(key for key in named if key is not None)

    @property
    def task(self) -> str:
        return self.metric.rsplit("/", 1)[0]

    @property
    def metric_name(self) -> str:
        return self.metric.rsplit("/", 1)[1]

    @property
    def stem(self) -> str:
        parts = [re.sub(r"[^A-Za-z0-9._=-]+", "-", self.metric).strip("-"), "vs", self.x.rsplit(".", 1)[-1]]
        if self.by:
            parts += ["by", self.by.rsplit(".", 1)[-1]]
        if self.best_over:
            parts += ["best", *(k.rsplit(".", 1)[-1] for k in self.best_over)]
        parts += [f"{k.rsplit('.', 1)[-1]}={v}" for k, v in self.where]
        return "_".join(parts)


def parse_analyses(value: Any, trial_names: set[str], source: str) -> Analyses | None:
    if value is None:
        return None
    where = f"{source}: analyze"
    if not isinstance(value, dict) or set(value) - {"spectrum", "subspace"}:
        raise ConfigError(f"{where}: a mapping with spectrum (all or trial names) and/or subspace ({{pairs: [[a, b]]}})")
    spectrum: tuple[str, ...] = ()
    if "spectrum" in value:
        found = value["spectrum"]
        spectrum = tuple(sorted(trial_names)) if found == "all" else tuple(_names(found, trial_names, f"{where}.spectrum"))
    pairs: tuple[tuple[str, str], ...] = ()
    of: tuple[str, ...] = ("auto",)
    if "subspace" in value:
        sub = value["subspace"]
        if not isinstance(sub, dict) or "pairs" not in sub or set(sub) - {"pairs", "of"}:
            raise ConfigError(f"{where}.subspace: {{pairs: [[trial, trial], ...], of: [A, delta-left]}}")
        raw_pairs = sub["pairs"]
        if not isinstance(raw_pairs, list) or not raw_pairs or not all(isinstance(p, list) and len(p) == 2 for p in raw_pairs):
            raise ConfigError(f"{where}.subspace.pairs: a list of [trial, trial] pairs")
        pairs = tuple(tuple(_names(p, trial_names, f"{where}.subspace.pairs")) for p in raw_pairs)  # type: ignore[misc]
        raw_of = sub.get("of", ["auto"])
        raw_of = [raw_of] if isinstance(raw_of, str) else raw_of
        if not isinstance(raw_of, list) or not raw_of or any(o not in SUBSPACE_BASES for o in raw_of):
            raise ConfigError(f"{where}.subspace.of: one or more of {', '.join(SUBSPACE_BASES)}")
        of = tuple(raw_of)
    return Analyses(spectrum, pairs, of)


def parse_plots(value: Any, source: str) -> tuple[AxisPlot, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ConfigError(f"{source}: plots must be a list of {{metric, x, by, best_over, where}}")
    out = []
    for i, item in enumerate(value):
        where = f"{source}: plots[{i}]"
        if not isinstance(item, dict) or set(item) - {"metric", "x", "by", "best_over", "where"} or not {"metric", "x"} <= set(item):
            raise ConfigError(f"{where}: {{metric: task/metric, x: recipe key, by: recipe key, best_over: [keys], where: {{key: value}}}}")
        metric = item["metric"]
        if not isinstance(metric, str) or "/" not in metric.strip("/"):
            raise ConfigError(f"{where}.metric: task/metric as in results.csv (arith/accuracy), got {metric!r}")
        best_over = item.get("best_over") or []
        filters = item.get("where") or {}
        if not isinstance(best_over, list) or not isinstance(filters, dict):
            raise ConfigError(f"{where}: best_over is a list of recipe keys, where a mapping of recipe keys to values")
        if item["x"] == STEP and best_over:
            raise ConfigError(f"{where}: best_over picks one final value per point; a plot along training (x: step) "
                              "draws every group: narrow it with where")  # fmt: skip
        out.append(AxisPlot(metric, str(item["x"]), item.get("by"), tuple(best_over), tuple(filters.items())))
    return tuple(out)


def _names(value: Any, known: set[str], where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: a list of trial names, got {value!r}")
    for name in value:
        if name not in known:
            raise ConfigError(f"{where}: no trial named {name!r}")
    return value
