"""TensorBoard: event files in ``<run>/tensorboard/`` (``tensorboard --logdir runs``)."""

from __future__ import annotations

from loralab.train.trackers.base import TrackedRun, Tracker

FOLDER = "tensorboard"


class TensorBoardTracker(Tracker):
    """Scalars through PyTorch's ``SummaryWriter``. A resumed run writes to the same folder with
    ``purge_step`` = the first step it trains, so TensorBoard hides what an interrupted session had
    logged beyond the checkpoint (the resumed run logs those steps again)."""

    name = "tensorboard"
    package = "tensorboard"
    module = "tensorboard"

    def __init__(self, run: TrackedRun) -> None:
        from torch.utils.tensorboard import SummaryWriter

        purge = run.start + 1 if run.resume else None
        self.writer = SummaryWriter(log_dir=str(run.path / FOLDER), purge_step=purge, flush_secs=10)

    def log(self, values: dict[str, float], step: int) -> None:
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, step)

    def close(self, status: str) -> None:
        self.writer.flush()
        self.writer.close()
