"""Parallel strategies as one table: ``ddp`` (replicated model), ``fsdp`` (sharded weights, FSDP2)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from loralab.process import current_role
from loralab.train.distributed.config import DistributedConfig
from loralab.train.distributed.strategies.base import Parallel
from loralab.train.distributed.strategies.ddp import DataParallel
from loralab.train.distributed.strategies.fsdp import ShardedParallel

if TYPE_CHECKING:
    from loralab.train.recipe import Recipe

#: ``distributed.strategy`` → its class; a method lists those it can use in ``Method.strategies``
STRATEGIES: dict[str, type[Parallel]] = {strategy.name: strategy for strategy in (DataParallel, ShardedParallel)}


def parallel_model(recipe: Recipe, model: nn.Module, device: torch.device, precision: str) -> Parallel | None:
    """The recipe's strategy around ``model`` when this process is one of several, else None (one process)."""
    if current_role().world_size == 1:
        return None
    config = recipe.distributed or DistributedConfig()
    return STRATEGIES[config.strategy](model, device, bf16=precision == "bf16")


__all__ = ["STRATEGIES", "DataParallel", "Parallel", "ShardedParallel", "parallel_model"]
