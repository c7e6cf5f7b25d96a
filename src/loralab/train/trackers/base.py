"""What every experiment tracker does: open (or reopen) a run, log scalars at a step, close."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

#: a file in the run folder where trackers keep what reopens their run on resume (a wandb or mlflow run id)
STATE_FILE = "trackers.json"


@dataclass(frozen=True)
class TrackedRun:
    """The run a tracker follows: its folder, name and recipe, and the step it starts after (resume)."""

    path: Path
    name: str
    config: dict[str, Any]
    start: int = 0
    resume: bool = False

    def state(self, tracker: str) -> dict[str, Any]:
        """What ``tracker`` saved for this run (``{}`` if nothing, or on a fresh start)."""
        file = self.path / STATE_FILE
        if not self.resume or not file.is_file():
            return {}
        try:
            saved = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return {}
        return saved.get(tracker, {}) if isinstance(saved, dict) else {}

    def save_state(self, tracker: str, state: dict[str, Any]) -> None:
        """Keep ``state`` for ``tracker`` so that a resumed run reopens the same tracked run."""
        file = self.path / STATE_FILE
        try:
            saved = json.loads(file.read_text(encoding="utf-8")) if file.is_file() else {}
        except (OSError, json.JSONDecodeError):
            saved = {}
        saved = saved if isinstance(saved, dict) else {}
        saved[tracker] = state
        tmp = file.with_suffix(".tmp")
        tmp.write_text(json.dumps(saved, indent=1) + "\n", encoding="utf-8")
        tmp.replace(file)


class Tracker:
    """One experiment tracker. A subclass names itself and its package, and implements the three calls.

    Scalars arrive named ``train/<field>`` (every numeric field of a metrics.jsonl record, at its step) and
    ``eval/<task>/<metric>`` (at the evaluation's step: 0 before training, N for ``step-N``, the last step
    for ``final``). ``close`` gets ``"finished"``, ``"failed"`` or ``"stopped"`` (a stop signal).
    """

    name: ClassVar[str]
    package: ClassVar[str]  #: what to ``pip install``
    module: ClassVar[str]  #: what is imported (found without importing it when the recipe is checked)

    def __init__(self, run: TrackedRun) -> None:
        raise NotImplementedError

    def log(self, values: dict[str, float], step: int) -> None:
        raise NotImplementedError

    def close(self, status: str) -> None:
        raise NotImplementedError
