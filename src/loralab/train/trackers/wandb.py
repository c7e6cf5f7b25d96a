"""Weights & Biases (``WANDB_PROJECT``, default ``loralab``; ``WANDB_MODE=offline`` logs locally)."""

from __future__ import annotations

import os

from loralab.train.trackers.base import TrackedRun, Tracker


class WandbTracker(Tracker):
    """A wandb run named after the run folder, its files in ``<run>/wandb/``, the recipe as its config.

    Training and evaluation scalars have their own x axes (``train/step``, ``eval/step``), so the
    evaluation before training can be completed after the last step. A resumed run reopens the same
    wandb run (its id is kept in ``<run>/trackers.json``)."""

    name = "wandb"
    package = "wandb"
    module = "wandb"

    def __init__(self, run: TrackedRun) -> None:
        import wandb

        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", "loralab"), name=run.name, id=run.state(self.name).get("id"),
                              resume="allow", dir=str(run.path), config=run.config)  # fmt: skip
        run.save_state(self.name, {"id": self.run.id})
        for axis in ("train", "eval"):
            self.run.define_metric(f"{axis}/step")
            self.run.define_metric(f"{axis}/*", step_metric=f"{axis}/step")

    def log(self, values: dict[str, float], step: int) -> None:
        axis = next(iter(values)).split("/", 1)[0]
        self.run.log({**values, f"{axis}/step": step})

    def close(self, status: str) -> None:
        self.run.finish(exit_code=0 if status == "finished" else 1)
