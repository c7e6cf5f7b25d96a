"""Run a study: its trials, by an executor (:mod:`loralab.studies.executors`), into
``<output_dir>/<study name>/<trial>/``; then the weight-update analyses it asks for.

A finished trial is skipped, an interrupted one resumed from its newest checkpoint (or started
again if it has none), a failed one recorded with its error while the study goes on. A stop
signal (Ctrl-C, SIGTERM) stops the study after the running trial has saved its checkpoint; running
the study again continues it. Nothing of a finished trial is ever deleted. The study folder gets
``study.yaml`` (the file as read), ``status.json`` (each trial's state and error), ``results.csv``,
``report.md`` and the plots (:mod:`loralab.studies.report`), ``analysis/`` (:mod:`loralab.studies.analyses`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from loralab.outputs import atomic_write, writable_folder
from loralab.process import say
from loralab.studies.analyses import run_analyses
from loralab.studies.executors import Executor, TrialJob, make_executor
from loralab.studies.results import results_csv, trial_rows
from loralab.studies.spec import Study, Trial
from loralab.studies.report import ReportInputs, write_report
from loralab.train.batches import BatchPlan
from loralab.train.runs import RunFolder

DONE, FAILED, SKIPPED, PLANNED = "done", "failed", "done before", "planned"


@dataclass
class StudyOutcome:
    """Each trial's state (done, done before, failed, planned) and error, and the results rows."""

    study: Study
    status: dict[str, dict[str, Any]] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    analyses: list[str] = field(default_factory=list)  # report.md lines of the weight-update analyses


def plan(study: Study) -> list[tuple[Trial, str, int]]:
    """(trial, what will happen to it, its optimiser steps; 0 when given by epochs over a data file of unknown size)."""
    out = []
    for trial in study.trials:
        recipe = study.recipe(trial)
        run = RunFolder(recipe.run_dir)
        if run.finished():
            action = "skip (finished)"
        elif run.recipe_file.is_file():
            action = "resume"
        else:
            action = "train"
        out.append((trial, action, _steps(recipe)))
    return out


def _steps(recipe) -> int:
    """``max_steps``, or the steps of ``epochs`` over ``data.examples`` examples where the recipe caps them."""
    train = recipe.train
    if train.max_steps is not None:
        return train.max_steps
    if recipe.data.examples is None:
        return 0
    return BatchPlan(recipe.data.examples, train.micro_batch_size, train.grad_accum).total_steps(train.epochs, None)


def seconds_per_step(study: Study) -> float | None:
    """Training plus evaluation seconds per optimiser step of the study's finished trials, None before any."""
    seconds = steps = 0.0
    for trial in study.trials:
        run = RunFolder(study.folder / trial.name)
        if run.finished() and run.metrics_file.is_file():
            metrics = run.read_metrics()
            per_task = {(label, r.task): r.seconds or 0.0 for label, results in run.evaluations().items() for r in results}
            evals = sum(per_task.values())  # a task's metrics share its seconds
            seconds += sum(m.get("seconds") or 0.0 for m in metrics) + evals
            steps += metrics[-1]["step"] if metrics else 0
    return seconds / steps if steps else None


def run_study(study: Study, *, progress: bool = True, executor: Executor | None = None) -> StudyOutcome:
    """Run every trial not yet finished with ``executor`` (default: in this process, one after
    another); write status.json, results.csv, the report and plots after each trial."""
    executor = executor or make_executor()
    writable_folder(study.folder, "the study folder")
    _write_text(study.folder / "study.yaml", yaml.safe_dump(study.source, sort_keys=False))
    outcome = StudyOutcome(study, {t.name: {"status": PLANNED} for t in study.trials})
    jobs = []
    for trial in study.trials:
        run = RunFolder(study.folder / trial.name)
        if run.finished():
            outcome.status[trial.name].update(status=SKIPPED)
        else:
            jobs.append(TrialJob(trial.name, study.recipe_path, tuple(study.overrides(trial)), run.path, run.recipe_file.is_file()))

    def on_done(job: TrialJob, error: str | None, seconds: float) -> None:
        state = outcome.status[job.name]
        if error is None:
            state.update(status=DONE, seconds=round(seconds, 1))
        else:
            state.update(status=FAILED, error=error)
            say(f"loralab study {study.name}: trial {job.name} failed ({error})")
        _write_outputs(outcome)

    try:
        executor.run(jobs, on_done, progress=progress)
        outcome.analyses = run_analyses(study.analyses, study.folder, _write_text, progress=progress)
    finally:
        _write_outputs(outcome)
    return outcome


def _write_outputs(outcome: StudyOutcome) -> None:
    study = outcome.study
    rows = []
    for trial in study.trials:
        run = RunFolder(study.folder / trial.name)
        base = {"trial": trial.name, "group": trial.group, "status": outcome.status[trial.name]["status"], **study.values(trial)}
        found = trial_rows(run) if run.recipe_file.is_file() else []
        rows += [{**base, **row} for row in found] or [base]
    outcome.rows = rows
    _write_text(study.folder / "status.json", json.dumps(outcome.status, indent=2) + "\n")
    _write_text(study.folder / "results.csv", results_csv(rows, study.varied_keys))
    inputs = ReportInputs(study.name, rows, study.varied_keys, outcome.status, dict(study.center), study.plots,
                          outcome.analyses, study.description)  # fmt: skip
    write_report(inputs, study.folder, _write_text)


def _write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
