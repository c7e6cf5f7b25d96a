"""The end of a run: the loss plot, ``report.md`` and a summary on the terminal."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from loralab.eval.report import compare_table, results_table
from loralab.lora.report import ParameterCount
from loralab.train.plots import plot_loss
from loralab.train.runs import RunFolder

if TYPE_CHECKING:
    from loralab.train.recipe import Recipe
    from loralab.train.trainer import TrainResult


@dataclass(frozen=True)
class RunSummary:
    """What the report says about a run besides its metrics: the setup the trainer chose."""

    recipe: Recipe
    run: RunFolder
    parameters: ParameterCount
    data: str  # the training set's statistics, one line
    precision: str  # e.g. "precision auto → fp32 (...)"
    notes: list[str] = field(default_factory=list)  # the method's lines (e.g. QLoRA's weight memory)


def loss_line(losses: list[float]) -> str:
    """The loss at the start and at the end: means of the first and last k = min(5, n // 2) steps,
    which never share a step (with one step: that step's loss)."""
    if not losses:
        return "no step recorded"
    if len(losses) == 1:
        return f"{losses[0]:.4f} (one step)"
    k = min(5, len(losses) // 2)
    first, last = sum(losses[:k]) / k, sum(losses[-k:]) / k
    if k == 1:
        return f"{first:.4f} (first step) → {last:.4f} (last step)"
    return f"{first:.4f} (mean of the first {k} steps) → {last:.4f} (last {k})"


def finish_report(summary: RunSummary, result: TrainResult) -> str:
    """Write loss.png and report.md into the run folder; print and return the summary."""
    recipe, run = summary.recipe, summary.run
    method = recipe.training_method
    records = run.read_metrics()
    plot_loss(records, run.plot, title=f"{recipe.name}: {recipe.method} on {recipe.model.name}")
    tokens = sum(r["tokens"] for r in records)
    train_seconds = sum(r["seconds"] for r in records)
    peak = max((r["peak_memory_mb"] for r in records), default=0.0)
    lines = [
        f"# Run `{recipe.name}`",
        "",
        f"- method: **{recipe.method}** on `{recipe.model.name}`; {summary.parameters}",
        f"- data: {recipe.data.task or recipe.data.path} ({recipe.data.regime}); {summary.data}",
        f"- {result.steps} optimiser steps of {recipe.train.micro_batch_size}×{recipe.train.grad_accum} examples, "
        f"objective {recipe.train.objective}, lr {recipe.optimizer.lr:g} ({recipe.train.schedule}), {summary.precision}",
        f"- time: {result.seconds:.0f} s in all, {train_seconds:.0f} s training "
        f"({tokens / max(train_seconds, 1e-9):.0f} tokens/s); peak memory {peak:.0f} MiB",
        f"- loss: {loss_line([r['loss'] for r in records])}",
        *[f"- {note}" for note in summary.notes],
        "",
        "![loss](loss.png)",
        "",
    ]
    if result.eval_before and result.eval_final:
        lines += ["## What it learned and what it forgot", "", "```", compare_table(result.eval_before, result.eval_final), "```", ""]
    elif result.eval_final:
        lines += ["## Evaluation", "", "```", results_table(result.eval_final), "```", ""]
    lines += [f"Saved: `{method.output_folder(run)}` ({method.output_kind}); metrics in `metrics.jsonl`, evaluations in `eval/`.", ""]
    text = "\n".join(lines)
    run.report.write_text(text, encoding="utf-8")
    summary_text = "\n".join(line for line in lines if not line.startswith("![")).replace("```\n", "").replace("```", "")
    print("\n" + summary_text)
    return text
