"""``results.csv`` of a study: one row per trial × evaluation point × metric, read through the run reader.

Columns: trial, group (the trial's name without its seed suffix), status, every varied recipe key
(each trial's value read from its resolved recipe, empty where its method has no such key), point (before, step-N, final), step, tokens seen,
seconds of training so far, peak memory so far, task, metric, domain (target: learned; source:
forgotten), higher_is_better, value, stderr, n.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from loralab.train.runs import BEFORE, FINAL, RunFolder

FIXED = ("point", "step", "tokens", "seconds", "peak_memory_mb", "task", "metric", "domain", "higher_is_better",
         "value", "stderr", "n")


def trial_rows(run: RunFolder) -> list[dict[str, Any]]:
    """Rows of one trial's run folder: every saved evaluation, placed on the training timeline."""
    metrics = run.read_metrics() if run.metrics_file.is_file() else []
    rows = []
    for label, results in run.evaluations().items():
        step = 0 if label == BEFORE else (metrics[-1]["step"] if metrics else 0) if label == FINAL else int(label[5:])
        seen = [m for m in metrics if m.get("step", 0) <= step]
        point = {
            "point": label,
            "step": step,
            "tokens": sum(m.get("tokens") or 0 for m in seen),
            "seconds": round(sum(m.get("seconds") or 0.0 for m in seen), 3),
            "peak_memory_mb": max((m.get("peak_memory_mb") or 0.0 for m in seen), default=None),
        }
        for r in results:
            rows.append({**point, "task": r.task, "metric": r.metric, "domain": r.domain,
                         "higher_is_better": r.higher_is_better, "value": r.value, "stderr": r.stderr, "n": r.n})
    return rows


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
