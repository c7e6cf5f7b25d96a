"""The end of a run: the loss plot, ``report.md`` and a summary on the terminal."""

from __future__ import annotations

from typing import Any

from loralab.train.plots import plot_loss


def finish_report(trainer: Any, result: Any) -> str:
    """Write loss.png and report.md into the run folder; print and return the summary."""
    from loralab.eval.report import compare_table, results_table

    recipe, run = trainer.recipe, trainer.run_folder
    records = run.read_metrics()
    plot_loss(records, run.plot, title=f"{recipe.name}: {recipe.method} on {recipe.model.name}")
    first = sum(r["loss"] for r in records[:5]) / max(1, len(records[:5]))
    last = sum(r["loss"] for r in records[-5:]) / max(1, len(records[-5:]))
    tokens = sum(r["tokens"] for r in records)
    train_seconds = sum(r["seconds"] for r in records)
    peak = max((r["peak_memory_mb"] for r in records), default=0.0)
    lines = [
        f"# Run `{recipe.name}`",
        "",
        f"- method: **{recipe.method}** on `{recipe.model.name}`; {trainer.counts}",
        f"- data: {recipe.data.task or recipe.data.path} ({recipe.data.regime}); {trainer.dataset.stats.summary()}",
        f"- {result.steps} optimiser steps of {recipe.train.micro_batch_size}×{recipe.train.grad_accum} examples, "
        f"lr {recipe.optimizer.lr:g} ({recipe.train.schedule}), {trainer.precision.describe(recipe.train.precision)}",
        f"- time: {result.seconds:.0f} s in all, {train_seconds:.0f} s training "
        f"({tokens / max(train_seconds, 1e-9):.0f} tokens/s); peak memory {peak:.0f} MiB",
        f"- loss: {first:.4f} (mean of the first 5 steps) → {last:.4f} (last 5)",
        *([f"- {trainer.weight_memory}"] if trainer.weight_memory is not None else []),
        "",
        "![loss](loss.png)",
        "",
    ]
    if result.eval_before and result.eval_final:
        lines += ["## What it learned and what it forgot", "", "```", compare_table(result.eval_before, result.eval_final), "```", ""]
    elif result.eval_final:
        lines += ["## Evaluation", "", "```", results_table(result.eval_final), "```", ""]
    output = run.adapter if recipe.uses_adapter else run.model
    lines += [f"Saved: `{output}` ({'adapter, PEFT format' if recipe.uses_adapter else 'Hugging Face format'}); "
              f"metrics in `metrics.jsonl`, evaluations in `eval/`.", ""]  # fmt: skip
    text = "\n".join(lines)
    run.report.write_text(text, encoding="utf-8")
    summary = "\n".join(line for line in lines if not line.startswith("![")).replace("```\n", "").replace("```", "")
    print("\n" + summary)
    return text
