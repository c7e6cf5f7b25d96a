"""Output locations: checked for writability before long work starts, write failures explained.

A run, a merge, an analysis or an evaluation may take minutes before it writes anything;
a read-only or full disk found only then wastes them. :func:`writable_folder` creates the
folder and really writes (and removes) a probe file in it — permission bits alone do not
tell (root ignores them; a read-only mount does not show in them). :func:`write_failure`
turns an error raised while writing (an ``OSError``, or the ``RuntimeError`` that
``torch.save`` raises on a failed write) into a one-line :class:`OutputError` saying why:
read-only, no permission, or the disk full (with the free space left).
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from loralab.errors import LoraLabError

#: below this much free space a failed write is reported as a full disk
NEARLY_FULL_BYTES = 64 * 2**20

_REASONS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exhausted",
    errno.EROFS: "it is on a read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
}


class OutputError(LoraLabError):
    """An output location cannot be written."""


def writable_folder(path: str | Path, what: str) -> Path:
    """Create folder ``path`` if needed and prove it writable; ``what`` names it in the error."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{what} {path} is a file; give a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".loralab-write-probe-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise write_failure(err, path, f"cannot write {what} {path}") from None
    return path


def writable_file(path: str | Path, what: str) -> Path:
    """Prove that file ``path`` can be (re)written: not a folder, its folder writable (created if needed)."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{what} {path} is a folder; give a file name")
    writable_folder(path.parent if str(path.parent) else Path("."), f"the folder of {what}")
    return path


def atomic_write(target: str | Path, write: Callable[[str], None]) -> None:
    """Write through a temporary file in the same folder, then rename over ``target``.

    ``write(tmp_path)`` fills the temporary file. ``target`` gets the mode any new file of the
    user gets (0666 less the umask), read off the temporary file as created; ``write`` may replace
    that file by a 0600 one of its own (safetensors' ``save_file`` does), so the mode is set again
    before the rename. A reader sees the old file or the new one, never a half-written one.
    """
    target = Path(target)
    tmp = str(target.parent / f".{target.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    mode = os.fstat(fd).st_mode & 0o777
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_failure(err: BaseException, path: str | Path, doing: str) -> OutputError:
    """An :class:`OutputError` for ``err`` raised while ``doing`` (e.g. "cannot write checkpoint X")."""
    reason = _REASONS.get(getattr(err, "errno", None) or -1)
    free = free_bytes(path)
    if reason is None and free is not None and free < NEARLY_FULL_BYTES:
        reason = "the disk is full"
    if reason is None:
        reason = getattr(err, "strerror", None) or str(err).splitlines()[0][:200]
    if reason.startswith("the disk") and free is not None:
        reason += f" ({free / 2**20:.0f} MiB free)"
    fix = "free some space or write elsewhere" if reason.startswith("the disk") else "choose a writable location"
    return OutputError(f"{doing}: {reason}; {fix}")


def umask() -> int:
    """The process's umask (new files get 0666 & ~umask, folders 0777 & ~umask)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def writing(path: str | Path, doing: str) -> Iterator[None]:
    """Turn a failed write inside the block (``OSError``, or torch's ``RuntimeError``) into :func:`write_failure`."""
    try:
        yield
    except (OSError, RuntimeError) as err:
        raise write_failure(err, path, doing) from None


def free_bytes(path: str | Path) -> int | None:
    """Free bytes on the file system holding ``path`` (or its nearest existing parent); None if unknown."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None
