"""``results.csv`` of a study: one row per trial × evaluation point × metric, read through the run reader,
and the trial's training loss along the way.

Columns: trial, group (the trial's name without its seed suffix), status, every varied recipe key
(each trial's value read from its resolved recipe, empty where its method has no such key), point (before, step-N, final), step, tokens seen,
seconds of training so far, peak memory so far, task, metric, domain (target: learned; source:
forgotten), higher_is_better, value, stderr, n.
Training curves: task ``train``, metric ``loss`` (and ``grad_norm``, the gradient norm before clipping; DPO's
``reward_accuracy`` and ``reward_margin``), domain ``train``, point ``train``; each row the mean of a block of
consecutive steps (``n`` of them; one step per row up to :data:`TRAIN_POINTS` steps), at the block's last step.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from loralab.train.runs import BEFORE, FINAL, RunFolder

TRAIN_POINTS = 64  # rows per trial and training metric at most: longer runs are averaged over blocks of steps
#: what a training step logs that results.csv keeps as curves (task ``train``) → whether higher is better
TRAIN_METRICS = {"loss": False, "grad_norm": None, "reward_accuracy": True, "reward_margin": True}
FIXED = ("point", "step", "tokens", "seconds", "peak_memory_mb", "task", "metric", "domain", "higher_is_better",
         "value", "stderr", "n")


def trial_rows(run: RunFolder) -> list[dict[str, Any]]:
    """Rows of one trial's run folder: every saved evaluation, placed on the training timeline."""
    metrics = run.read_metrics() if run.metrics_file.is_file() else []
    rows = []
    for label, results in run.evaluations().items():
        step = 0 if label == BEFORE else (metrics[-1]["step"] if metrics else 0) if label == FINAL else int(label[5:])
        point = {"point": label, **_timeline(metrics, step)}
        for r in results:
            rows.append({**point, "task": r.task, "metric": r.metric, "domain": r.domain,
                         "higher_is_better": r.higher_is_better, "value": r.value, "stderr": r.stderr, "n": r.n})
    return rows + training_rows(metrics)


def training_rows(metrics: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The training curves of ``metrics.jsonl`` records (:data:`TRAIN_METRICS` that were logged): per metric, one
    row per block of ⌈steps / TRAIN_POINTS⌉ consecutive steps with the block's mean, at the block's last step."""
    rows = []
    for metric, higher_is_better in TRAIN_METRICS.items():
        logged = [m for m in metrics if isinstance(m.get(metric), (int, float)) and math.isfinite(m[metric])]
        size = max(1, math.ceil(len(logged) / TRAIN_POINTS))
        for start in range(0, len(logged), size):
            block = logged[start : start + size]
            rows.append({"point": "train", **_timeline(metrics, block[-1]["step"]), "task": "train", "metric": metric,
                         "domain": "train", "higher_is_better": higher_is_better,
                         "value": sum(m[metric] for m in block) / len(block), "stderr": None, "n": len(block)})  # fmt: skip
    return rows


def _timeline(metrics: list[dict[str, Any]], step: int) -> dict[str, Any]:
    """Where ``step`` is on the training timeline: the step, tokens and seconds so far, peak memory so far."""
    seen = [m for m in metrics if m.get("step", 0) <= step]
    return {
        "step": step,
        "tokens": sum(m.get("tokens") or 0 for m in seen),
        "seconds": round(sum(m.get("seconds") or 0.0 for m in seen), 3),
        "peak_memory_mb": max((m.get("peak_memory_mb") or 0.0 for m in seen), default=None),
    }


def results_csv(rows: list[dict[str, Any]], varied: list[str]) -> str:
    """The CSV text: trial, group, status, the varied keys, then the fixed columns."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["trial", "group", "status", *varied, *FIXED], extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return out.getvalue()


def read_results(path: str | Path) -> list[dict[str, str]]:
    """The rows of a ``results.csv`` (strings, as written)."""
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))
