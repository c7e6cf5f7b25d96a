"""Checkpoints of sharded training (FSDP2), through ``torch.distributed.checkpoint`` (DCP), and its final output.

Folder ``step-NNNNNNNN`` as for every checkpoint (:mod:`loralab.train.checkpoint`), holding
``sharded/`` (DCP: each rank writes its own shards of the weights and of the optimiser state, keyed by
parameter name; ``.metadata`` says which rows are where; trainable tensors only, so a LoRA checkpoint
holds the adapter and not the frozen base), ``state.pt`` (step, RNG, identity, the data
position: what the trainer saves besides tensors; written by rank 0) and the ``COMPLETE`` marker.
All ranks write into one temporary folder; after a barrier rank 0 completes it and renames it into
place, so a folder with the final name is always whole. DCP reshards on load: a checkpoint written by
W processes is read by any number of them, one included (then into a plain, unsharded model).

The final output (an adapter, or a Hugging Face folder) is written by the method itself, on rank 0,
within :func:`whole_parameters`: the trainable weights gathered whole, in place of the shards.
"""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.api import CheckpointException
from torch import nn
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict, get_state_dict, set_state_dict

from loralab.errors import ConfigError
from loralab.outputs import write_failure
from loralab.process import current_role
from loralab.train import checkpoint as ckpt
from loralab.train.distributed.setup import barrier

#: the DCP folder inside a sharded checkpoint
SHARDED = "sharded"
#: trainable tensors only: a LoRA checkpoint holds the adapter, not the frozen base (it is the base model's)
TRAINABLE = StateDictOptions(ignore_frozen_params=True)


def is_sharded(path: Path) -> bool:
    return (Path(path) / SHARDED).is_dir()


def save_sharded(folder: Path, step: int, model: nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any], keep: int) -> Path:
    """Checkpoint ``step``: every rank's shards, then rank 0's ``state.pt`` and marker (a collective: every rank calls it)."""
    writes = current_role().writes
    final, tmp = folder / f"step-{step:08d}", folder / f".step-{step:08d}.tmp-sharded"
    model_state, optim_state = get_state_dict(model, optimizer, options=TRAINABLE)
    try:
        if writes:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        barrier()
        dcp.save({"model": model_state, "optimizer": optim_state}, checkpoint_id=str(tmp / SHARDED))
        barrier()
        if writes:
            torch.save(state, tmp / "state.pt")
            (tmp / ckpt.MARKER).write_text(str(step))
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
            ckpt.prune(folder, keep)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise write_failure(err, folder, f"cannot write checkpoint {final}") from None
    barrier()
    return final


def read_state(path: Path) -> tuple[int, dict[str, Any]]:
    """(step, state.pt) of a sharded checkpoint; :class:`~loralab.train.checkpoint.DamagedCheckpoint` if unreadable."""
    try:
        return int(path.name.split("-")[1]), torch.load(path / "state.pt", weights_only=True)
    except Exception as err:  # noqa: BLE001 — any failure to read means the same thing to the user
        raise ckpt.DamagedCheckpoint(f"checkpoint {path} cannot be read ({type(err).__name__})") from None


def check_shards(path: Path) -> None:
    """DamagedCheckpoint unless the DCP metadata reads and every byte range it names is in its file
    (a missing or truncated shard file). DCP keeps no checksums: damage inside a file shows when loading."""
    from torch.distributed.checkpoint import FileSystemReader

    folder = path / SHARDED
    try:
        storage = FileSystemReader(str(folder)).read_metadata().storage_data
    except Exception as err:  # noqa: BLE001 — missing, truncated or garbled metadata: the same to the user
        raise ckpt.DamagedCheckpoint(f"checkpoint {path} cannot be read (its shard index: {type(err).__name__})") from None
    needed: dict[str, int] = {}
    for item in storage.values():
        needed[item.relative_path] = max(needed.get(item.relative_path, 0), item.offset + item.length)
    for name, size in sorted(needed.items()):
        file = folder / name
        have = file.stat().st_size if file.is_file() else -1
        if have < size:
            what = "is missing" if have < 0 else f"holds {have} of {size} bytes"
            raise ckpt.DamagedCheckpoint(f"checkpoint {path} cannot be read (shard file {name} {what})")


def load_sharded(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Weights and optimiser state from ``path`` into this rank's shards (or the whole model, on one process)."""
    model_state, optim_state = get_state_dict(model, optimizer, options=TRAINABLE)
    loaded = {"model": model_state, "optimizer": optim_state}
    try:
        with warnings.catch_warnings():  # on one process DCP warns that it assumes one process
            warnings.filterwarnings("ignore", message="torch.distributed is disabled")
            dcp.load(loaded, checkpoint_id=str(path / SHARDED))
    except (CheckpointException, RuntimeError, ValueError, KeyError) as err:  # CheckpointException: a failure on some rank
        raise ConfigError(f"checkpoint {path} does not fit this model or optimiser ({str(err).splitlines()[0][:200]}); "
                          f"resume with the recipe it was trained with") from None  # fmt: skip
    set_state_dict(model, optimizer, model_state_dict=loaded["model"], optim_state_dict=loaded["optimizer"],
                   options=StateDictOptions(ignore_frozen_params=True, strict=False))  # the frozen base: as loaded


@contextmanager
def whole_parameters(model: nn.Module) -> Iterator[None]:
    """Within the block rank 0's model holds whole (unsharded, CPU) tensors for its trainable parameters, so
    the method's own ``save_final`` writes them (an adapter, or a Hugging Face folder); the shards come back after.

    Every rank must enter it (gathering is a collective); only rank 0 gets tensors. The frozen base of a LoRA
    run is not gathered: it is not saved.
    """
    whole = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True, ignore_frozen_params=True))
    swapped: list[tuple[nn.Module, str, nn.Parameter]] = []
    replacement: dict[int, nn.Parameter] = {}  # by the shard's id: tied weights stay tied
    try:
        for name, tensor in whole.items():
            owner, _, leaf = name.rpartition(".")
            module = model.get_submodule(owner)
            shard = module._parameters[leaf]
            swapped.append((module, leaf, shard))
            module._parameters[leaf] = replacement.setdefault(id(shard), nn.Parameter(tensor, requires_grad=True))
        yield
    finally:
        for module, leaf, shard in reversed(swapped):
            module._parameters[leaf] = shard
