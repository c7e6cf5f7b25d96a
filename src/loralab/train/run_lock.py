"""One process at a time per run folder: an OS file lock, released when its holder dies.

``RunLock(folder)`` takes an exclusive ``flock`` on ``folder/.lock`` (the folder is created
and proven writable first) and writes who holds it: pid, host, start time, command. A second
trainer, a ``--resume`` or a ``--force`` on the same folder fails at once with
:class:`RunInUse` naming the holder, instead of interleaving metrics or deleting the other's
checkpoints. The kernel releases the lock when the holding process exits or is killed, even
with ``kill -9``, so a stale lock never needs cleaning up.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path

from loralab.errors import LoraLabError
from loralab.outputs import write_failure, writable_folder

LOCK_NAME = ".lock"


class RunInUse(LoraLabError):
    """Another live process holds the run folder."""


class RunLock:
    """Context manager holding the lock of one run folder (see the module docstring)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self._handle = None

    def __enter__(self) -> "RunLock":
        writable_folder(self.folder, "run folder")
        try:
            handle = open(self.path, "a+", encoding="utf-8")
        except OSError as err:
            raise write_failure(err, self.folder, f"cannot lock run folder {self.folder}") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = _describe(handle.read())
            handle.close()
            raise RunInUse(f"run folder {self.folder} is in use by {holder}; wait for it to finish or stop it "
                           f"(the lock goes when that process ends)") from None  # fmt: skip
        handle.seek(0)
        handle.truncate()
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S"),
                  "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:300]}  # fmt: skip
        handle.write(json.dumps(holder) + "\n")
        handle.flush()
        self._handle = handle
        return self

    def __exit__(self, *exc) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


def _describe(text: str) -> str:
    try:
        holder = json.loads(text.strip().splitlines()[0])
        return f"process {holder['pid']} on {holder['host']} (since {holder['since']}: {holder['command']})"
    except (ValueError, KeyError, IndexError, TypeError):
        return "another process"
