"""FSDP2 (``torch.distributed.fsdp.fully_shard``): weights, gradients and optimiser state sharded over ranks.

Each decoder layer is one FSDP unit (its parameters are all-gathered just before its forward and
backward, and freed after), then the root takes what is left (embeddings, final norm, head). Every
parameter becomes a DTensor holding 1/W of the rows on each rank. With ``train.precision: bf16``
the policy computes with bf16 parameters and reduces gradients in fp32 (``MixedPrecisionPolicy``);
the sharded master weights stay in their own dtype.

Full fine-tuning and LoRA alike. FSDP2 shards each parameter on its own (a DTensor), so one unit may mix
a frozen base and trainable adapters: the frozen base costs 1/W of its memory on each rank and no
gradient memory at all (only parameters that require grad get gradients and are reduce-scattered). That is
the pitfall of FSDP1, whose flat parameters had to be all frozen or all trainable (torchtune wrapped each
LoRA module as a unit of its own for it); FSDP2 needs no such wrapping. The 4-bit base of QLoRA is not
sharded (its NF4 blocks are not plain tensors): ``qlora`` uses ``ddp``.

Gradients are reduce-scattered summed, not averaged (divide factor 1): rank r back-propagates
ℓ_r / N with N summed over ranks, as under DDP. Within a step only the last micro-batch reduces
(``set_requires_gradient_sync``). PyTorch before 2.8 can only average (FSDPModule has no
``set_gradient_divide_factor``): there the strategy refuses to start rather than train with gradients 1/W too
small. Every rank runs each evaluation (the weights exist only sharded);
they see the same items and compute the same results. Checkpoints go through
``torch.distributed.checkpoint`` (:mod:`loralab.train.distributed.sharded_checkpoint`).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch import nn
from torch.distributed.fsdp import FSDPModule, MixedPrecisionPolicy, fully_shard
from torch.distributed.tensor import DTensor

from loralab.errors import ConfigError
from loralab.models.blocks import decoder_layers
from loralab.train.distributed.strategies.base import Parallel


def check_gradient_sums() -> None:
    """A ConfigError where this PyTorch's FSDP2 cannot sum gradients over ranks (before 2.8: only a mean)."""
    if not all(hasattr(FSDPModule, name) for name in ("set_gradient_divide_factor", "set_force_sum_reduction_for_comms")):
        raise ConfigError(f"distributed.strategy: fsdp needs PyTorch 2.8 or newer (this is {torch.__version__}, whose FSDP2 "
                          "averages gradients over ranks and cannot be told to sum them); use ddp, or upgrade PyTorch")  # fmt: skip


def sharding_units(model: nn.Module) -> list[nn.Module]:
    """The decoder layers, each sharded as one unit; a ConfigError when the model names none."""
    layers = decoder_layers(model)
    if not layers:
        raise ConfigError(f"distributed.strategy: fsdp shards per decoder layer, and {type(model).__name__} names none "
                          f"(no _no_split_modules); use ddp")  # fmt: skip
    return layers


class ShardedParallel(Parallel):
    name = "fsdp"
    evaluates_on_every_rank = True
    shards_state = True

    def __init__(self, model: nn.Module, device: torch.device, bf16: bool = False) -> None:
        check_gradient_sums()
        policy = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) if bf16 else MixedPrecisionPolicy()
        for layer in sharding_units(model):
            fully_shard(layer, mp_policy=policy)
        fully_shard(model, mp_policy=policy)
        for unit in model.modules():
            if isinstance(unit, FSDPModule):
                unit.set_gradient_divide_factor(1.0)  # a sum over ranks, not a mean
                unit.set_force_sum_reduction_for_comms(True)  # a plain SUM (Gloo has no PREMUL_SUM)
        super().__init__(model)

    def micro_batch(self, last: bool) -> AbstractContextManager:
        self.module.set_requires_gradient_sync(last)
        return nullcontext()

    def clip_grad_norm(self, params: list[torch.Tensor], max_norm: float) -> float:
        norm = torch.nn.utils.clip_grad_norm_(params, max_norm)  # the norm over all shards, a replicated DTensor
        return float(norm.full_tensor() if isinstance(norm, DTensor) else norm)

    def evaluate(self, fn: Callable[[], Any]) -> Any:
        return fn()
