"""What a study's trials reached: final values, means over seeds, and the sensitivity of a metric to each axis.

All functions read ``results.csv`` rows (strings or values, as :mod:`loralab.studies.results` writes
them). A trial's *final* value of a metric is the one at its last evaluation point. Trials of one
*group* differ only in their seed: a group's value is the mean over its seeds, its spread the sample
standard deviation over seeds (0 with one seed), its error the standard error of that mean — or,
with one seed, the evaluation's own standard error.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import yaml

SEED = "train.seed"


@dataclass(frozen=True)
class GroupValue:
    """A group's final value of one metric over its seeds."""

    group: str
    values: dict[str, Any]  # varied key → value (seed excluded)
    mean: float
    spread: float  # standard deviation over seeds; 0 with one seed
    stderr: float  # of the mean over seeds, or the evaluation's own with one seed
    seeds: int
    step: int


@dataclass(frozen=True)
class Sensitivity:
    """How far ``key`` moves the metric: the group means at each of its values, their range and spread."""

    key: str
    means: dict[str, float]  # value (as text) → mean of the groups with that value
    range: float
    std: float
    design: str  # "one at a time" (others at the centre) or "marginal" (averaged over the other keys)
    used: int = 0  # groups compared
    total: int = 0  # groups with a final value


def as_float(value: Any) -> float | None:
    if value in (None, ""):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def text(value: Any) -> str:
    """A value as one canonical string (so 0.001, '0.001' and 1.0e-3 compare equal)."""
    if isinstance(value, str):
        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError:
            return value
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        value = int(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(text(v) for v in value) + "]"
    return "" if value is None else str(value)


def higher_is_better(rows: list[dict[str, Any]], task: str, metric: str) -> bool:
    for r in rows:
        if r.get("task") == task and r.get("metric") == metric:
            return str(r.get("higher_is_better")).lower() == "true"
    return True


def final_rows(rows: list[dict[str, Any]], task: str, metric: str) -> dict[str, dict[str, Any]]:
    """trial → its row of ``task/metric`` at its last evaluation point."""
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r.get("task") == task and r.get("metric") == metric and as_float(r.get("value")) is not None:
            if r["trial"] not in out or int(r["step"]) >= int(out[r["trial"]]["step"]):
                out[r["trial"]] = r
    return out


def group_values(rows: list[dict[str, Any]], task: str, metric: str, varied: list[str]) -> list[GroupValue]:
    """One GroupValue per group that has a final ``task/metric``, in first-seen order."""
    members: dict[str, list[dict[str, Any]]] = {}
    for row in final_rows(rows, task, metric).values():
        members.setdefault(row.get("group") or row["trial"], []).append(row)
    out = []
    for group, found in members.items():
        values = [float(r["value"]) for r in found]
        mean = sum(values) / len(values)
        if len(values) > 1:
            spread = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
            stderr = spread / math.sqrt(len(values))
        else:
            spread, stderr = 0.0, as_float(found[0].get("stderr")) or 0.0
        keys = {k: found[0].get(k) for k in varied if k != SEED}
        out.append(GroupValue(group, keys, mean, spread, stderr, len(values), int(found[0]["step"])))
    return out


def sensitivity(groups: list[GroupValue], keys: list[str], center: dict[str, Any]) -> list[Sensitivity]:
    """Per varied key, the metric's mean at each value, ranked by range (largest first).

    With a centre (a one-at-a-time design), only its axes are ranked, each key's values compared among
    the groups whose other centre keys hold the centre's values; otherwise (marginal) each value's mean is
    over the same combinations of the other keys' values (:func:`balanced_groups`)."""
    centre = {k: text(v) for k, v in center.items()}
    out = []
    for key in keys:
        if key == SEED or (centre and key not in centre):  # with a centre, only its axes: others ride on explicit trials
            continue
        others = {k: v for k, v in centre.items() if k != key}
        if key in centre:
            chosen = [g for g in groups if all(text(g.values.get(k)) == v for k, v in others.items())]
        else:
            chosen = balanced_groups(groups, key, keys)
        by_value: dict[str, list[float]] = {}
        for g in chosen:
            by_value.setdefault(text(g.values.get(key)), []).append(g.mean)
        if len(by_value) < 2:
            continue
        means = {v: sum(m) / len(m) for v, m in by_value.items()}
        mu = sum(means.values()) / len(means)
        std = math.sqrt(sum((m - mu) ** 2 for m in means.values()) / (len(means) - 1))
        design = "one at a time" if key in centre else "marginal"
        out.append(Sensitivity(key, means, max(means.values()) - min(means.values()), std, design, len(chosen), len(groups)))
    return sorted(out, key=lambda s: -s.range)


def balanced_groups(groups: list[GroupValue], key: str, keys: list[str]) -> list[GroupValue]:
    """The groups of the largest balanced block for ``key``: every kept value of ``key`` was run at every kept
    combination of the other keys' values, so each value's mean is over the same combinations. A trial added
    beside a grid (one rank at one learning rate) would otherwise give its value a mean over other conditions.
    Largest: the most groups, then the most values (every set of values is tried up to 12 values; beyond, the
    sets of values run at ≥ n combinations). Empty when no two values share a combination."""
    others = [k for k in keys if k not in (key, SEED)]
    combos: dict[str, set[tuple[str, ...]]] = {}
    for g in groups:
        combos.setdefault(text(g.values.get(key)), set()).add(tuple(text(g.values.get(k)) for k in others))
    values = sorted(combos)
    if len(values) <= 12:
        candidates = [set(chosen) for size in range(2, len(values) + 1) for chosen in itertools.combinations(values, size)]
    else:
        candidates = [{v for v in values if len(combos[v]) >= n} for n in {len(c) for c in combos.values()}]
    best: tuple[int, int] = (0, 0)
    kept: tuple[set[str], set[tuple[str, ...]]] = (set(), set())
    for chosen in candidates:
        if len(chosen) < 2:
            continue
        shared = set.intersection(*(combos[v] for v in chosen))
        score = (len(chosen) * len(shared), len(chosen))
        if shared and score > best:
            best, kept = score, (chosen, shared)
    chosen, shared = kept
    return [g for g in groups if text(g.values.get(key)) in chosen and tuple(text(g.values.get(k)) for k in others) in shared]
