"""Trackio (Hugging Face's local-first tracker; ``TRACKIO_PROJECT``, default ``loralab``)."""

from __future__ import annotations

import os

from loralab.train.trackers.base import TrackedRun, Tracker


class TrackioTracker(Tracker):
    """A trackio run named after the run folder, the recipe as its config; a resumed run continues it."""

    name = "trackio"
    package = "trackio"
    module = "trackio"

    def __init__(self, run: TrackedRun) -> None:
        import trackio

        self.run = trackio.init(project=os.environ.get("TRACKIO_PROJECT", "loralab"), name=run.name, config=run.config,
                                resume="allow" if run.resume else "never")  # fmt: skip

    def log(self, values: dict[str, float], step: int) -> None:
        self.run.log(values, step=step)

    def close(self, status: str) -> None:
        self.run.finish()
