"""DDP: every rank holds the whole model; the trainable gradients are summed over ranks after each step's backward.

Rank r back-propagates ℓ_r / N (N: the normaliser summed over ranks), so the summed gradient
Σ_r ∇(ℓ_r / N) is exactly the gradient of one process holding all W shares. DDP's default hook
averages (divides by W); :func:`~loralab.train.distributed.reduce.sum_gradients_hook` sums instead.
Only trainable parameters are registered with DDP: the frozen base and the buffers are neither
broadcast at the start nor synchronised (every rank loaded the same base: ``forward_sync_buffers=False``,
``broadcast_buffers=False`` before PyTorch 2.13, with the buffers ignored), so a LoRA run exchanges only
adapter gradients; the trainable ones are broadcast from rank 0 once, when DDP wraps the model. Within a step, micro-batches before the last run under ``no_sync``: their
gradients accumulate locally and one all-reduce covers the step.
"""

from __future__ import annotations

import inspect
from contextlib import AbstractContextManager, nullcontext

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from loralab.train.distributed.reduce import sum_gradients_hook
from loralab.train.distributed.strategies.base import Parallel


def no_buffer_sync(ddp_class: type = DistributedDataParallel) -> dict[str, bool]:
    """DDP's argument that turns off the buffers' broadcast before each forward: ``forward_sync_buffers`` from
    PyTorch 2.13 (where the old name warns), ``broadcast_buffers`` before (the GPU images' PyTorch 2.11)."""
    accepted = inspect.signature(ddp_class.__init__).parameters
    return {next(name for name in ("forward_sync_buffers", "broadcast_buffers") if name in accepted): False}


class DataParallel(Parallel):
    name = "ddp"

    def __init__(self, model: nn.Module, device: torch.device, bf16: bool = False) -> None:
        frozen = [name for name, p in model.named_parameters() if not p.requires_grad]
        buffers = [name for name, _ in model.named_buffers()]
        DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(model, frozen + buffers)
        wrapper = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                          **no_buffer_sync())  # fmt: skip (buffers are ignored anyway)
        wrapper.register_comm_hook(None, sum_gradients_hook)
        super().__init__(wrapper)

    def micro_batch(self, last: bool) -> AbstractContextManager:
        return nullcontext() if last else self.module.no_sync()
