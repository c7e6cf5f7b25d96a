"""Which examples go into which micro-batch: a pure function of (seed, step).

Each epoch visits the n examples in the order ``randperm(n)`` drawn from a generator seeded
with (seed, epoch), in micro-batches of ``micro_batch_size`` (the last one of an epoch may be
smaller). Optimiser step s uses micro-batches s·k … s·k + k − 1 (k = ``grad_accum``), counted
across epochs. Nothing is stored: a resumed run finds its place from the step alone.

With ``role.world_size`` processes, micro-batch i is split across them: the order is drawn once,
global micro-batches hold ``micro_batch_size × world_size`` examples, and process ``role.rank`` takes
its ``micro_batch_size`` of them, so the processes together see what one process would see with
a micro-batch ``world_size`` times larger.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

from loralab.process import ProcessRole


@dataclass(frozen=True)
class BatchPlan:
    examples: int
    micro_batch_size: int
    grad_accum: int
    seed: int = 0
    role: ProcessRole = ProcessRole()  # this process's rank in a world of world_size processes

    @property
    def global_micro_batch_size(self) -> int:
        return self.micro_batch_size * self.role.world_size

    @property
    def micro_batches_per_epoch(self) -> int:
        return math.ceil(self.examples / self.global_micro_batch_size)

    def total_steps(self, epochs: float, max_steps: int | None) -> int:
        """``max_steps`` if given, else enough steps for ``epochs`` passes (at least 1)."""
        if max_steps is not None:
            return max_steps
        return max(1, math.ceil(epochs * self.micro_batches_per_epoch / self.grad_accum))

    @functools.lru_cache(maxsize=2)  # one epoch's order serves all its micro-batches
    def order(self, epoch: int) -> list[int]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.examples, generator=generator).tolist()

    def micro_batch(self, index: int) -> list[int]:
        """This process's example indices of micro-batch ``index`` (counted from the start of training)."""
        epoch, within = divmod(index, self.micro_batches_per_epoch)
        start = within * self.global_micro_batch_size + self.role.rank * self.micro_batch_size
        end = min(start + self.micro_batch_size, (within + 1) * self.global_micro_batch_size)
        return self.order(epoch)[start:end]

    def step(self, step: int) -> list[list[int]]:
        """The ``grad_accum`` micro-batches of optimiser step ``step`` (0-based)."""
        return [self.micro_batch(step * self.grad_accum + i) for i in range(self.grad_accum)]

    def epoch_of(self, step: int) -> float:
        return step * self.grad_accum / self.micro_batches_per_epoch
