"""Atomic on-disk caches: a folder is either absent or complete, never half-written."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from loralab.outputs import umask


def cache_dir() -> Path:
    """Where converted models are cached: ``$LORALAB_CACHE`` or ``~/.cache/loralab``."""
    return Path(os.environ.get("LORALAB_CACHE", Path.home() / ".cache" / "loralab"))


STALE_AFTER_S = 6 * 3600  # a temporary folder untouched this long was left by a killed process


def _remove_stale_temps(target: Path) -> None:
    """Delete temporary siblings of ``target`` left by processes killed mid-save (a model is ~0.5 GB)."""
    for leftover in target.parent.glob(f".{target.name}.tmp*"):
        try:
            stale = time.time() - leftover.stat().st_mtime > STALE_AFTER_S
        except OSError:  # removed meanwhile by its owner
            continue
        if stale:
            shutil.rmtree(leftover, ignore_errors=True)


def atomic_save(save: Callable[[Path], None], target: Path) -> None:
    """Run ``save(folder)`` into a fresh temporary sibling of ``target``, then rename it to ``target``.

    The rename is atomic, so readers see no folder or a complete one. If another process
    finished first, its folder is kept and ours is discarded; on error nothing is left behind.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp", dir=target.parent))
    try:
        save(tmp)
        os.chmod(tmp, 0o777 & ~umask())  # mkdtemp makes it 0700; the folder a user gets follows their umask
        try:
            tmp.replace(target)
        except OSError:
            if not target.is_dir():  # a real failure, not a lost race
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def file_cache_key(path: Path) -> str:
    """``<stem>-<12 hex>``: a hash of the resolved path, size and mtime, so a changed or moved file gets a new key."""
    path = path.resolve()
    stat = path.stat()
    digest = hashlib.sha256(f"{path}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    return f"{path.stem}-{digest}"
