"""The recipe's ``distributed`` section: how a run spreads over the processes ``torchrun`` starts.

    distributed:
      strategy: ddp        # ddp: every rank holds the whole model; fsdp: weights sharded (lora and full)
      backend: auto        # auto: nccl on cuda, gloo on cpu
      timeout_minutes: 30  # a rank waiting longer than this for the others stops with an error

The section is optional: without it a run under ``torchrun`` uses these defaults, and a
single-process run ignores it (its ``recipe.yaml`` is written without it, as before).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from loralab.train.schema import check_fields


@dataclass(frozen=True)
class DistributedConfig:
    """``strategy`` (``ddp`` | ``fsdp``), ``backend`` (``auto`` | ``nccl`` | ``gloo``) and
    ``timeout_minutes``: how long a rank waits in a collective (an all-reduce, a barrier, rank 0's
    evaluation) before it gives up on the others."""

    strategy: Literal["ddp", "fsdp"] = "ddp"
    backend: Literal["auto", "nccl", "gloo"] = "auto"
    timeout_minutes: Annotated[float, "(0, 1440]"] = 30.0

    def __post_init__(self) -> None:
        check_fields(self)
