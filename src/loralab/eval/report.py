"""Reporting results: JSON records, a terminal table, and base vs fine-tuned side by side.

The comparison pairs results by (task, metric) and splits them into what was
learned (target domain) and what was forgotten (source domain). Δ is
fine-tuned - base; "better"/"worse" follows each metric's direction
(perplexity and KL: lower is better).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from loralab.eval.result import TaskResult


def to_json(results: Sequence[TaskResult], path: str | Path | None = None, *, variant: str | None = None) -> str:
    """The results as a JSON list (one record per task and metric); also written to ``path`` if given."""
    records = [dict(result.to_dict(), **({"variant": variant} if variant else {})) for result in results]
    text = json.dumps(records, indent=2, default=str)
    if path is not None:
        Path(path).write_text(text + "\n", encoding="utf-8")
    return text


def results_table(results: Sequence[TaskResult]) -> str:
    """A plain-text table: task, metric, value ± stderr, n, seconds."""
    rows = [("task", "metric", "value", "± stderr", "n", "seconds")]
    for r in results:
        rows.append((r.task, r.metric, _number(r.value), _number(r.stderr), str(r.n), f"{r.seconds:.1f}"))
    return _render(rows)


def compare_table(base: Sequence[TaskResult], tuned: Sequence[TaskResult]) -> str:
    """Side by side: base, fine-tuned, Δ and whether it got better, grouped into learned / forgotten."""
    before = {(r.task, r.metric): r for r in base}
    sections = []
    for domain, title in (("target", "LEARNED (target domain)"), ("source", "FORGOTTEN (source domain)")):
        rows = [("task", "metric", "base", "fine-tuned", "Δ", "")]
        for r in tuned:
            old = before.get((r.task, r.metric))
            if r.domain != domain or old is None:
                continue
            delta = r.value - old.value
            verdict = "same" if delta == 0 else ("better" if (delta > 0) == r.higher_is_better else "worse")
            rows.append((r.task, r.metric, _number(old.value), _number(r.value), f"{delta:+.4g}", verdict))
        if len(rows) > 1:
            sections.append(f"{title}\n{_render(rows)}")
    return "\n\n".join(sections) if sections else "(no metric was measured on both models)"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _render(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)
