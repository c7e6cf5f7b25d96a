"""Checkpoints that survive being killed at any moment.

A checkpoint is a folder ``step-NNNNNNNN`` holding ``tensors.safetensors`` (named tensors,
e.g. the trainable weights) and ``state.pt`` (optimiser, scheduler, RNG and data position:
tensors and plain Python values only, read back with ``torch.load(weights_only=True)``, so
no arbitrary pickle is ever executed). It is written in a temporary folder, completed with a
``COMPLETE`` marker, and renamed into place: a folder with the final name is always whole,
and a half-written one is never picked up.

A checkpoint is only ever written with finite tensors (:class:`NonFiniteCheckpoint`
otherwise), and one that cannot be read, or holds NaN/inf, is :class:`DamagedCheckpoint`:
the caller may fall back to an older one. A failed write (disk full, read-only) removes its
temporary folder and raises a one-line :class:`~loralab.outputs.OutputError`.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors.torch import load_file, save_file

from loralab.errors import LoraLabError
from loralab.outputs import umask, write_failure
from loralab.train.step import non_finite_parameters

_NAME = re.compile(r"^step-(\d{8})$")
MARKER = "COMPLETE"


class NonFiniteCheckpoint(LoraLabError):
    """Refused to write a checkpoint holding NaN or infinite tensors."""


class DamagedCheckpoint(LoraLabError):
    """A complete-looking checkpoint cannot be read or holds NaN or infinite tensors."""


def save_checkpoint(
    folder: str | Path,
    step: int,
    tensors: dict[str, torch.Tensor],
    state: dict[str, Any],
    keep: int = 2,
    write_extra: Callable[[Path], None] | None = None,
) -> Path:
    """Write checkpoint ``step`` atomically under ``folder``, then keep only the newest ``keep``.

    ``write_extra(tmp_folder)`` may add files (e.g. a PEFT-format adapter) before the rename.
    """
    spoiled = non_finite_parameters(list(tensors.items()))
    if spoiled:
        raise NonFiniteCheckpoint(f"not writing checkpoint step {step}: {', '.join(spoiled[:3])} hold NaN or inf")
    folder = Path(folder)
    final = folder / f"step-{step:08d}"
    tmp = folder / f".step-{step:08d}.tmp{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        save_file({k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}, str(tmp / "tensors.safetensors"))
        os.chmod(tmp / "tensors.safetensors", 0o666 & ~umask())  # safetensors writes 0600; follow the user's umask
        torch.save(state, tmp / "state.pt")
        if write_extra is not None:
            write_extra(tmp)
        (tmp / MARKER).write_text(str(step))
        _fsync_dir(tmp)
        if final.exists():  # the same step again (e.g. after a resume): replace it whole
            shutil.rmtree(final)
        os.replace(tmp, final)
        _fsync_dir(folder)
    except (OSError, RuntimeError) as err:  # torch.save reports a failed write as a RuntimeError
        shutil.rmtree(tmp, ignore_errors=True)
        raise write_failure(err, folder, f"cannot write checkpoint {final}") from None
    prune(folder, keep)
    return final


def complete_checkpoints(folder: str | Path) -> list[Path]:
    """Whole checkpoints, oldest first (temporary and unmarked folders are ignored)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if _NAME.match(p.name) and (p / MARKER).is_file()]
    return sorted(found, key=lambda p: int(_NAME.match(p.name).group(1)))


def latest_checkpoint(folder: str | Path) -> Path | None:
    found = complete_checkpoints(folder)
    return found[-1] if found else None


def load_checkpoint(path: str | Path) -> tuple[int, dict[str, torch.Tensor], dict[str, Any]]:
    """(step, tensors, state) of a checkpoint folder; :class:`DamagedCheckpoint` if unreadable or non-finite."""
    path = Path(path)
    match = _NAME.match(path.name)
    if not match or not (path / MARKER).is_file():
        raise LoraLabError(f"{path} is not a complete checkpoint (expected a step-NNNNNNNN folder with {MARKER})")
    try:
        tensors = load_file(str(path / "tensors.safetensors"))
        state = torch.load(path / "state.pt", weights_only=True)
    except Exception as err:  # noqa: BLE001 — any failure to read means the same thing to the user
        reason = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        raise DamagedCheckpoint(f"checkpoint {path} cannot be read ({reason})") from None
    spoiled = non_finite_parameters(list(tensors.items()))
    if spoiled:
        raise DamagedCheckpoint(f"checkpoint {path} holds NaN or inf in {', '.join(spoiled[:3])}")
    return int(match.group(1)), tensors, state


def prune(folder: str | Path, keep: int) -> None:
    """Delete all but the newest ``keep`` complete checkpoints, and stale temporary folders."""
    folder = Path(folder)
    for old in complete_checkpoints(folder)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    for stale in folder.glob(".step-*.tmp*"):
        if not stale.name.endswith(f".tmp{os.getpid()}"):
            shutil.rmtree(stale, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
