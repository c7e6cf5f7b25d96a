"""What a world size must fit, checked before the first step and when a run resumes.

Global micro-batch i holds ``micro_batch_size × W`` examples of the epoch's order and rank r takes
positions [r·m, (r+1)·m) of it (:class:`~loralab.train.batches.BatchPlan`). The last micro-batch of an
epoch holds only the remainder ρ = n mod (m·W) examples, and every rank must get at least one of them:
a rank with nothing to forward cannot take part in the gradient exchange. So ρ = 0 or ρ > (W − 1)·m.

A checkpoint written by W processes records m·W; resuming it on W' processes continues the same data
order (BatchPlan is a function of the seed, the step and m·W alone) only when m'·W' = m·W, e.g.
2 processes × 2 examples → 1 process × 4.
"""

from __future__ import annotations

from loralab.errors import ConfigError
from loralab.train.batches import BatchPlan


def check_world_fits(plan: BatchPlan) -> None:
    """A ConfigError when some rank would get an empty micro-batch (see the module docstring)."""
    m, world = plan.micro_batch_size, plan.role.world_size
    if world == 1:
        return
    if plan.examples < world:
        raise ConfigError(f"{plan.examples} training examples cannot be shared by {world} processes; use fewer processes")
    remainder = plan.examples % (m * world)
    if remainder and remainder <= (world - 1) * m:
        empty = world - 1 - (remainder - 1) // m
        fitting = [k for k in range(1, m + 1) if plan.examples % (k * world) == 0 or plan.examples % (k * world) > (world - 1) * k]
        hint = f"train.micro_batch_size: {fitting[-1]}" if fitting else f"fewer processes, or data.examples a multiple of {world}"
        raise ConfigError(f"{plan.examples} examples in micro-batches of {m} × {world} processes leave {empty} of them nothing "
                          f"in the last micro-batch of each epoch (the world size does not divide the data); "
                          f"use {hint}")  # fmt: skip


def resume_world_error(path: object, written_by: int, plan: BatchPlan) -> ConfigError:
    """The error for resuming a checkpoint whose micro-batches held ``written_by`` examples over all processes
    with a plan whose micro-batches hold another number: the data order would change."""
    world, m = plan.role.world_size, plan.micro_batch_size
    fix = (f"train.micro_batch_size={written_by // world}" if written_by % world == 0
           else f"a number of processes that divides {written_by}")
    return ConfigError(f"checkpoint {path} was trained with {written_by} examples per micro-batch over all processes; "
                       f"{world} process{'es' if world > 1 else ''} × train.micro_batch_size {m} would take "
                       f"{m * world} and change the data order: resume with {fix}")  # fmt: skip
