"""Experiment trackers (``train.report_to``): every metrics.jsonl record and every evaluation, forwarded.

``metrics.jsonl`` and ``eval/*.json`` stay the source of truth; trackers get a copy as it is written,
from the writing process only. Each tracker is one file here with a :class:`~.base.Tracker` subclass,
listed in ``TRACKERS``; its package is optional and checked when the recipe is (an install hint if it is
missing). A tracker that fails while the run goes on is reported once and dropped: training continues.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Any

from loralab.errors import ConfigError
from loralab.process import say
from loralab.train.trackers.base import TrackedRun, Tracker
from loralab.train.trackers.mlflow import MlflowTracker
from loralab.train.trackers.tensorboard import TensorBoardTracker
from loralab.train.trackers.trackio import TrackioTracker
from loralab.train.trackers.wandb import WandbTracker

TRACKERS: dict[str, type[Tracker]] = {
    tracker.name: tracker for tracker in (TensorBoardTracker, WandbTracker, MlflowTracker, TrackioTracker)
}

__all__ = ["TRACKERS", "TrackedRun", "Tracker", "Trackers", "check_installed"]


def check_installed(names: tuple[str, ...] | list[str]) -> None:
    """ConfigError naming the first tracker whose package is not installed, and how to install it."""
    for name in names:
        tracker = TRACKERS[name]
        try:
            found = importlib.util.find_spec(tracker.module) is not None
        except (ImportError, ValueError):  # a broken install, or a module blocked in sys.modules
            found = False
        if not found:
            raise ConfigError(f"train.report_to: {name} needs the '{tracker.package}' package, which is not "
                              f"installed: pip install {tracker.package}")  # fmt: skip


class Trackers:
    """The run's open trackers, fed and closed together (none: every call does nothing)."""

    def __init__(self, trackers: list[Tracker] | None = None) -> None:
        self.trackers = list(trackers or [])

    @classmethod
    def open(cls, names: tuple[str, ...], path: Path, name: str, config: dict[str, Any], start: int, resume: bool) -> "Trackers":
        """Open each named tracker for the run in ``path``, which continues after step ``start`` when resumed."""
        run = TrackedRun(path, name, config, start, resume)
        opened: list[Tracker] = []
        for tracker in names:
            try:
                opened.append(TRACKERS[tracker](run))
            except Exception as err:
                cls(opened).close(err)
                raise ConfigError(f"train.report_to: {tracker} could not start ({type(err).__name__}: {_first_line(err)})") from None
        return cls(opened)

    def log_metrics(self, record: dict[str, Any]) -> None:
        """One metrics.jsonl record: its numeric fields as ``train/<field>`` at its step."""
        values = {f"train/{key}": float(value) for key, value in record.items() if key != "step" and _number(value)}
        self._log(values, int(record["step"]))

    def log_evaluation(self, label: str, results: list[Any], completed: int) -> None:
        """Task results as ``eval/<task>/<metric>``: at step 0 before training, else at ``completed``."""
        values = {f"eval/{r.task}/{r.metric}": float(r.value) for r in results if _number(r.value)}
        self._log(values, 0 if label == "before" else completed)

    def close(self, error: BaseException | None = None) -> None:
        """Flush and close every tracker: ``error`` None is a finished run, KeyboardInterrupt a stopped one."""
        status = "finished" if error is None else "stopped" if isinstance(error, KeyboardInterrupt) else "failed"
        trackers, self.trackers = self.trackers, []
        for tracker in trackers:
            try:
                tracker.close(status)
            except Exception as err:
                say(f"loralab: warning: {tracker.name} did not close cleanly ({type(err).__name__}: {_first_line(err)})")

    def _log(self, values: dict[str, float], step: int) -> None:
        if not values:
            return
        for tracker in list(self.trackers):
            try:
                tracker.log(values, step)
            except Exception as err:
                self.trackers.remove(tracker)
                say(f"loralab: warning: {tracker.name} failed ({type(err).__name__}: {_first_line(err)}); "
                    "no longer reporting to it (metrics.jsonl has everything)")  # fmt: skip
                try:
                    tracker.close("failed")
                except Exception:
                    pass


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else ""
