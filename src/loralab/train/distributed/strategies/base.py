"""What a training step needs from a parallel strategy, whichever it is.

A :class:`Parallel` wraps the prepared model of one rank in a world of W ranks. The step calls
``module`` (the wrapper: its forward and backward communicate), opens ``micro_batch(last)``
around each micro-batch (gradients are exchanged only after the last one of a step), sums its
counts with ``sum`` and clips with ``clip_grad_norm``. The trainer asks ``evaluate(fn)`` to run an
evaluation and ``seed_rank`` for each rank's own random stream (dropout masks).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, ClassVar

import torch
import torch.distributed as dist
from torch import nn

from loralab.process import current_role
from loralab.train.distributed.reduce import sum_over_ranks


class Parallel(ABC):
    """One rank's view of a model trained over W ranks (see the module docstring)."""

    name: ClassVar[str]
    #: True: every rank runs each evaluation (its weights are sharded); False: rank 0 alone, the others wait
    evaluates_on_every_rank: ClassVar[bool] = False
    #: True: checkpoints and the final model are written by every rank together (sharded state)
    shards_state: ClassVar[bool] = False

    def __init__(self, module: nn.Module) -> None:
        self.module = module
        self.role = current_role()

    @abstractmethod
    def micro_batch(self, last: bool) -> AbstractContextManager:
        """The context of one micro-batch's forward and backward; gradients are reduced over ranks only when ``last``."""

    def sum(self, values: list[float]) -> list[float]:
        """Σ over ranks of each value (the same on every rank)."""
        return sum_over_ranks(values)

    def clip_grad_norm(self, params: list[torch.Tensor], max_norm: float) -> float:
        """Clip the global gradient norm to ``max_norm``; returns the norm before clipping (the same on every rank)."""
        return float(torch.nn.utils.clip_grad_norm_(params, max_norm))

    def evaluate(self, fn: Callable[[], Any]) -> Any:
        """``fn()`` on rank 0 while the others wait (at most ``distributed.timeout_minutes``); its result on every rank."""
        box = [fn() if self.role.writes else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def seed_rank(self, seed: int, step: int) -> None:
        """Give rank r > 0 a random stream of its own, from (seed, step, r): its dropout masks differ from rank 0's.
        Called before every step, so a run resumed at step s on the same ranks draws what the uninterrupted run
        drew. Rank 0 keeps the stream a checkpoint saves, so a run resumed on one rank continues rank 0's."""
        if self.role.rank:
            torch.manual_seed((seed * 1_000_003 + step) * 1_009 + self.role.rank)
