"""Which process this is (rank, world size), and the one rule of who writes.

Under ``torchrun`` every process runs the same recipe. Only the writer (rank 0) writes files,
prints and shows progress bars; every other place asks :func:`current_role` instead of
reading ranks itself. Without ``torch.distributed`` (one process) the role is rank 0 of 1.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch.distributed as dist


@dataclass(frozen=True)
class ProcessRole:
    rank: int = 0
    world_size: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank {self.rank} is outside a world of {self.world_size} processes")

    @property
    def writes(self) -> bool:
        """Whether this process writes files, prints and shows progress (rank 0 only)."""
        return self.rank == 0


def current_role() -> ProcessRole:
    """The initialised process group's rank and size, else torchrun's ``RANK``/``WORLD_SIZE``, else (0, 1)."""
    if dist.is_available() and dist.is_initialized():
        return ProcessRole(dist.get_rank(), dist.get_world_size())
    return ProcessRole(int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1")))


def is_writer() -> bool:
    return current_role().writes


def say(message: str) -> None:
    """Print on the writer only."""
    if is_writer():
        print(message, flush=True)


def show_progress(requested: bool) -> bool:
    """Whether to draw a progress bar: asked for, and on the writer."""
    return requested and is_writer()
