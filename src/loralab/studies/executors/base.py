"""What an executor runs: one trial as a job, and the interface every executor has.

A :class:`TrialJob` is everything needed to run a trial anywhere: in this process, in a
subprocess on one GPU, or as a Ray task on another machine (it is plain data and pickles).
``argv`` is the ``loralab`` command line that does the same work, so an executor that starts
processes needs nothing else. An executor calls ``on_done(job, error, seconds)`` once per job
(``error`` None when the trial finished), from the thread that called ``run``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from loralab.train.runs import RunFolder


@dataclass(frozen=True)
class TrialJob:
    """One trial to run: a new run from the recipe file and overrides, or the resumption of ``run_dir``."""

    name: str
    recipe_path: Path
    overrides: tuple[str, ...]  # everything that makes the trial's recipe, its name and output folder included
    run_dir: Path
    resume: bool

    def argv(self) -> list[str]:
        """Arguments of ``loralab`` (``python -m loralab``) that run this trial."""
        if self.resume:
            return ["train", "--resume", str(self.run_dir), "--no-progress"]
        return ["train", str(self.recipe_path), *self.overrides, "--no-progress"]

    def finished(self) -> bool:
        """Whether the trial's run folder holds its final adapter or model."""
        run = RunFolder(self.run_dir)
        return run.finished()


def ended_trial(job: TrialJob, error: str | None, stopped: bool) -> tuple[str | None, bool]:
    """(error, stopped) of a trial process that was asked to stop, judged by its run folder: one whose stop came
    after it wrote its final output is finished (a rerun of the study skips it), whatever its exit status said."""
    if stopped and job.finished():
        return None, False
    return error, stopped


OnDone = Callable[[TrialJob, "str | None", float], None]


class Executor:
    """Runs trial jobs; ``workers`` at a time where the executor can run several."""

    name = "executor"

    def __init__(self, workers: int = 1) -> None:
        self.workers = workers

    def run(self, jobs: list[TrialJob], on_done: OnDone, *, progress: bool = True) -> None:
        raise NotImplementedError
