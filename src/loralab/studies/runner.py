"""Run a study: its trials one after another into ``<output_dir>/<study name>/<trial>/``.

A finished trial is skipped, an interrupted one resumed from its newest checkpoint (or started
again if it has none), a failed one recorded with its error while the study goes on. A stop
signal (Ctrl-C, SIGTERM) stops the study after the running trial has saved its checkpoint; running
the study again continues it. Nothing of a finished trial is ever deleted. The study folder gets
``study.yaml`` (the file as read), ``status.json`` (each trial's state and error), ``results.csv``,
``report.md`` and ``learning_vs_forgetting.png`` (:mod:`loralab.studies.tradeoff`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from loralab.outputs import atomic_write, writable_folder
from loralab.process import say
from loralab.studies.results import results_csv, trial_rows
from loralab.studies.spec import Study, Trial
from loralab.studies.tradeoff import plot_trade_off, report_markdown, trade_off
from loralab.train.runs import RunFolder

DONE, FAILED, SKIPPED, PLANNED = "done", "failed", "done before", "planned"


@dataclass
class StudyOutcome:
    """Each trial's state (done, done before, failed, planned) and error, and the results rows."""

    study: Study
    status: dict[str, dict[str, Any]] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)


def plan(study: Study) -> list[tuple[Trial, str, int]]:
    """(trial, what will happen to it, its optimiser steps or 0 when given by epochs)."""
    out = []
    for trial in study.trials:
        recipe = study.recipe(trial)
        run = RunFolder(recipe.run_dir)
        if run.recipe_file.is_file() and run.finished():
            action = "skip (finished)"
        elif run.recipe_file.is_file():
            action = "resume"
        else:
            action = "train"
        out.append((trial, action, recipe.train.max_steps or 0))
    return out


def run_study(study: Study, *, progress: bool = True) -> StudyOutcome:
    """Run every trial not yet finished; write status.json and results.csv after each one."""
    from loralab.train.trainer import resume, train

    writable_folder(study.folder, "the study folder")
    _write_text(study.folder / "study.yaml", yaml.safe_dump(study.source, sort_keys=False))
    outcome = StudyOutcome(study, {t.name: {"status": PLANNED} for t in study.trials})
    for index, trial in enumerate(study.trials, 1):
        recipe = study.recipe(trial)
        run = RunFolder(recipe.run_dir)
        state = outcome.status[trial.name]
        if run.recipe_file.is_file() and run.finished():
            state.update(status=SKIPPED)
            continue
        say(f"loralab study {study.name}: trial {index}/{len(study.trials)} {trial.name}")
        started = time.monotonic()
        try:
            if run.recipe_file.is_file():
                resume(run.path, progress=progress)
            else:
                train(recipe, progress=progress)
            state.update(status=DONE, seconds=round(time.monotonic() - started, 1))
        except Exception as err:  # noqa: BLE001 - one trial's mistake or bug must not lose the others (a stop signal does stop)
            state.update(status=FAILED, error=f"{type(err).__name__}: {err}")
            say(f"loralab study {study.name}: trial {trial.name} failed ({type(err).__name__}: {err})")
        finally:
            _write_outputs(outcome)
    _write_outputs(outcome)
    return outcome


def _write_outputs(outcome: StudyOutcome) -> None:
    study = outcome.study
    rows = []
    for trial in study.trials:
        run = RunFolder(study.folder / trial.name)
        base = {"trial": trial.name, "status": outcome.status[trial.name]["status"], **dict(trial.varied)}
        found = trial_rows(run) if run.recipe_file.is_file() else []
        rows += [{**base, **row} for row in found] or [base]
    outcome.rows = rows
    _write_text(study.folder / "status.json", json.dumps(outcome.status, indent=2) + "\n")
    _write_text(study.folder / "results.csv", results_csv(rows, study.varied_keys))
    _write_text(study.folder / "report.md", report_markdown(study.name, rows, outcome.status, study.varied_keys))
    paths = trade_off(rows)
    if paths is not None and paths.paths:
        plot_trade_off(paths, study.folder / "learning_vs_forgetting.png", f"study {study.name}: learning vs forgetting")


def _write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
