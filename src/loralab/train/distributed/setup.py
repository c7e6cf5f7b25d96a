"""Joining and leaving the process group that ``torchrun`` describes in the environment.

``torchrun`` starts W processes with ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and
``MASTER_PORT`` set. :func:`process_group` reads them, picks the backend (``auto``: nccl when the run
is on cuda, gloo on cpu), pins a GPU rank to ``cuda:LOCAL_RANK``, and calls ``init_process_group``
with ``distributed.timeout_minutes``: a rank that waits longer for the others in a collective fails
instead of hanging. On the way out, a failed collective (a rank died, or stopped answering) becomes
a one-line :class:`RankFailure`, and the group is destroyed. With W = 1 nothing happens at all.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import torch
import torch.distributed as dist

from loralab.errors import ConfigError, LoraLabError
from loralab.process import current_role
from loralab.train.distributed.config import DistributedConfig

#: how long a rank whose collective failed waits for the others to show they are alive (gloo)
PROBE_SECONDS = 10


class RankFailure(LoraLabError):
    """A collective failed: another rank died, was killed, or did not answer within the timeout."""

    same_on_every_rank = False


def resolve_backend(config: DistributedConfig, device: str) -> str:
    """The backend to use: ``auto`` → nccl on cuda, gloo on cpu; a backend this machine lacks is a ConfigError."""
    on_cuda = device.startswith("cuda")
    backend = config.backend if config.backend != "auto" else ("nccl" if on_cuda else "gloo")
    if backend == "nccl":
        if not (dist.is_nccl_available() and torch.cuda.is_available()):
            raise ConfigError("distributed.backend: nccl needs CUDA GPUs, and this machine (or this torch build) has none; "
                              "use distributed.backend: gloo (or auto) with train.device: cpu")  # fmt: skip
        if not on_cuda:
            raise ConfigError("distributed.backend: nccl communicates between GPUs, but train.device is cpu; use gloo (or auto)")
    elif not dist.is_gloo_available():
        raise ConfigError("distributed.backend: this torch build has no gloo backend; use nccl on GPUs")
    return backend


def check_devices(device: str, local_rank: int) -> None:
    """A GPU run needs one GPU per process on each machine."""
    if device.startswith("cuda") and local_rank >= torch.cuda.device_count():
        err = ConfigError(f"local rank {local_rank} has no GPU: this machine has {torch.cuda.device_count()}; "
                          f"start at most that many processes per machine (--nproc-per-node)")  # fmt: skip
        err.same_on_every_rank = False  # local rank 0 may have its GPU
        raise err


@contextmanager
def process_group(config: DistributedConfig | None, device: str) -> Iterator[bool]:
    """Within the block this process is in torchrun's group (yields True), or alone (False: W = 1)."""
    role = current_role()
    if role.world_size == 1 or dist.is_initialized():
        yield dist.is_initialized()
        return
    config = config or DistributedConfig()
    if not dist.is_available():
        raise ConfigError("this torch build has no torch.distributed: run with one process")
    backend = resolve_backend(config, device)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if backend == "nccl":
        check_devices(device, local_rank)
        torch.cuda.set_device(local_rank)  # "cuda" now means this rank's GPU
    timeout = timedelta(minutes=config.timeout_minutes)
    try:
        dist.init_process_group(backend, timeout=timeout)
    except (RuntimeError, ValueError) as err:  # no MASTER_ADDR, unreachable master, rendezvous timeout
        raise RankFailure(f"rank {role.rank}: cannot join the other {role.world_size - 1} processes "
                          f"({_first_line(err)}); start the run with torchrun or loralab train --nproc N") from None  # fmt: skip
    try:
        yield True
    except (RuntimeError, dist.DistError) as err:
        if not _lost_a_rank(err):
            raise
        raise RankFailure(f"rank {role.rank}: another rank died or stopped answering (distributed.timeout_minutes = "
                          f"{config.timeout_minutes:g}), so this one stops too ({_first_line(err)})") from None  # fmt: skip
    finally:
        dist.destroy_process_group()


def _lost_a_rank(err: BaseException) -> bool:
    """Whether ``err`` means the group is broken (not a bug of this rank's own): a DistError, or with gloo a
    RuntimeError after which the other ranks do not all reach a barrier within PROBE_SECONDS."""
    if isinstance(err, dist.DistError):
        return True
    if dist.get_backend() != "gloo":
        return False
    try:
        dist.monitored_barrier(timeout=timedelta(seconds=PROBE_SECONDS))
    except RuntimeError:
        return True
    return False


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return (text[0] if text else type(err).__name__)[:300]


def barrier() -> None:
    """Wait for every rank (no-op in a single process)."""
    if dist.is_initialized():
        dist.barrier()
