"""The folder of one run, ``<output_dir>/<name>/``: where everything goes, and the one reader of it.

    recipe.yaml      the resolved recipe (what ran, overrides included)
    metrics.jsonl    one JSON record per optimiser step (step, loss, lr, grad_norm, tokens/s, memory)
    checkpoints/     step-NNNNNNNN/ (see loralab.train.checkpoint); adapter runs add adapter/ inside
    adapter/         the final adapter in PEFT format (lora, qlora)
    model/           the final model in Hugging Face format (full)
    eval/            before.json, step-NNNNNNNN.json, final.json
    loss.png         the loss curve
    report.md        what ran, how long, what it learned and what it forgot

The trainer, ``loralab merge``, ``loralab analyze`` and reports all read runs through
:class:`RunFolder`. Reading a finished run never needs its training data or anything else
outside the folder: the recipe is read as saved (see ``load_recipe(saved=True)``).
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loralab.errors import ConfigError
from loralab.eval.result import TaskResult
from loralab.train.checkpoint import complete_checkpoints
from loralab.train.methods import METHODS, Method
from loralab.outputs import write_failure
from loralab.train.recipe import Recipe, load_recipe
from loralab.train.run_lock import LOCK_NAME, RunLock

FINAL, BEFORE = "final", "before"


@dataclass(frozen=True)
class RunFolder:
    path: Path

    recipe_file = property(lambda self: self.path / "recipe.yaml")
    metrics_file = property(lambda self: self.path / "metrics.jsonl")
    checkpoints_dir = property(lambda self: self.path / "checkpoints")
    adapter = property(lambda self: self.path / "adapter")
    model = property(lambda self: self.path / "model")
    eval_dir = property(lambda self: self.path / "eval")
    plot = property(lambda self: self.path / "loss.png")
    report = property(lambda self: self.path / "report.md")

    @classmethod
    def existing(cls, path: str | Path) -> "RunFolder":
        """A run folder that must already hold a recipe (for --resume, merge, analyze)."""
        folder = cls(Path(path))
        if not folder.path.is_dir():
            raise ConfigError(f"run folder {path} does not exist")
        if not folder.recipe_file.is_file():
            raise ConfigError(f"{path} is not a run folder (no recipe.yaml in it)")
        return folder

    # -- what ran ------------------------------------------------------------------------
    def recipe(self, overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
        """The recipe the run was trained with, as saved (its data files need not exist any more)."""
        return load_recipe(self.recipe_file, overrides, saved=True)

    @property
    def method(self) -> Method:
        return METHODS[self.recipe().method]

    @property
    def name(self) -> str:
        return self.path.name

    # -- what it wrote -------------------------------------------------------------------
    def output(self) -> Path:
        """The final adapter (adapter runs) or model (full fine-tuning) folder."""
        return self.method.output_folder(self)

    def finished(self) -> bool:
        """Whether the final adapter or model has been written (False for a folder with no recipe yet)."""
        return self.recipe_file.is_file() and self.method.finished(self)

    def require_finished(self) -> "RunFolder":
        """This run, if its final adapter or model has been written; else a one-line ConfigError."""
        if not self.finished():
            raise ConfigError(f"{self.path} has no final {self.method.output_kind.split(',')[0]} yet "
                              "(the run did not finish; resume it first)")  # fmt: skip
        return self

    def checkpoints(self) -> list[tuple[int, Path]]:
        """(step, folder) of every complete checkpoint, oldest first."""
        return [(int(p.name.split("-")[1]), p) for p in complete_checkpoints(self.checkpoints_dir)]

    def latest_checkpoint(self) -> Path | None:
        found = self.checkpoints()
        return found[-1][1] if found else None

    def checkpoint(self, step: int) -> Path:
        """The folder of checkpoint ``step``; a missing one is an error listing those there are."""
        found = dict(self.checkpoints())
        if step not in found:
            have = ", ".join(str(s) for s in found) or "none"
            raise ConfigError(f"run {self.path} has no complete checkpoint at step {step} (complete checkpoints: {have})")
        return found[step]

    # -- evaluations ---------------------------------------------------------------------
    def eval_file(self, label: str) -> Path:
        return self.eval_dir / f"{label}.json"

    def evaluation(self, label: str) -> list[TaskResult]:
        """The task results saved under ``label`` (``before``, ``step-NNNNNNNN``, ``final``); [] if none."""
        path = self.eval_file(label)
        if not path.is_file():
            return []
        records = json.loads(path.read_text(encoding="utf-8"))
        fields = TaskResult.__dataclass_fields__
        return [TaskResult(**{k: v for k, v in r.items() if k in fields}) for r in records]

    def evaluations(self) -> dict[str, list[TaskResult]]:
        """Every saved evaluation in training order: before, step-…, final."""
        labels = sorted(p.stem for p in self.eval_dir.glob("*.json")) if self.eval_dir.is_dir() else []
        steps = [label for label in labels if label.startswith("step-")]
        ordered = [BEFORE] * (BEFORE in labels) + steps + [FINAL] * (FINAL in labels)
        return {label: self.evaluation(label) for label in ordered}

    # -- writing -------------------------------------------------------------------------
    def lock(self) -> RunLock:
        """The folder's lock (a context manager; see :mod:`loralab.train.run_lock`)."""
        return RunLock(self.path)

    def clear(self) -> None:
        """Remove everything in the folder but its lock (a fresh start in the same place)."""
        for child in self.path.iterdir() if self.path.is_dir() else []:
            if child.name == LOCK_NAME:
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()

    # -- metrics ------------------------------------------------------------------------
    def append_metrics(self, record: dict[str, Any]) -> None:
        """Append one record as a line of strict JSON (a NaN or ±inf value is written as null)."""
        line = json.dumps({k: _finite_or_none(v) for k, v in record.items()}, allow_nan=False)
        try:
            with self.metrics_file.open("a", encoding="utf-8") as handle:
                handle.write(line + "\n")
        except OSError as err:
            raise write_failure(err, self.path, f"cannot write {self.metrics_file}") from None

    def read_metrics(self) -> list[dict[str, Any]]:
        """Every readable record in order; a damaged line (cut short by a kill, garbled) is skipped."""
        if not self.metrics_file.is_file():
            return []
        records = []
        for line in self.metrics_file.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except (json.JSONDecodeError, RecursionError):
                continue
            if isinstance(record, dict):
                records.append(record)
        return records

    def keep_metrics_until(self, step: int) -> None:
        """Drop records after ``step`` (a resumed run writes them again); damaged lines go too."""
        kept = [r for r in self.read_metrics() if isinstance(r.get("step"), int) and r["step"] <= step]
        tmp = self.metrics_file.with_suffix(".tmp")
        try:
            tmp.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
            tmp.replace(self.metrics_file)
        except OSError as err:
            raise write_failure(err, self.path, f"cannot rewrite {self.metrics_file}") from None


def _finite_or_none(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def open_run(path: str | Path) -> RunFolder:
    """The run folder at ``path`` (it must hold a recipe.yaml)."""
    return RunFolder.existing(path)
