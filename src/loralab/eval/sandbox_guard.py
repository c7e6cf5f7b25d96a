"""Guards installed in the sandbox child before the untrusted program runs.

This file is not imported by loralab: its source is copied into the child's
throwaway folder and executed there (the child runs ``python -I``). It
replaces process, signal and network entry points with a function that raises
:class:`SandboxViolation`, and refuses to write, delete or rename anything
outside the folder.

This is the second layer, not the boundary: Python code can undo any of it (``posix``, ``_io``,
``ctypes`` after ``sys.modules`` surgery). The boundary is the kernel's (:mod:`.sandbox_confine`)
and the separate tests process (:mod:`.sandbox_runner`); the guard turns the common accidents
into readable reasons ("blocked: os.system ...") instead of a bare EPERM.
"""

import builtins
import io
import os
import shutil
import socket
import sys


class SandboxViolation(Exception):
    """The program tried something the sandbox forbids."""


def _blocked(name):
    def refuse(*args, **kwargs):
        raise SandboxViolation(f"blocked: {name} is not allowed in the sandbox")

    return refuse


def _inside(root, path):
    if isinstance(path, int):  # an already open file descriptor
        return True
    full = os.path.realpath(os.path.join(root, os.fsdecode(path)))
    return full == root or full.startswith(root + os.sep)


def _guard_path(root, name, function, arguments=1):
    def checked(*args, **kwargs):
        for path in args[:arguments]:
            if not _inside(root, path):
                raise SandboxViolation(f"blocked: {name}({path!r}) outside the sandbox folder")
        return function(*args, **kwargs)

    return checked


def _guard_open(root, original):
    def checked_open(file, mode="r", *args, **kwargs):
        if any(flag in mode for flag in "wax+") and not _inside(root, file):
            raise SandboxViolation(f"blocked: writing {file!r} outside the sandbox folder")
        return original(file, mode, *args, **kwargs)

    return checked_open


def _guard_os_open(root, original):
    writing = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

    def checked(path, flags, *args, **kwargs):
        if flags & writing and not _inside(root, path):
            raise SandboxViolation(f"blocked: os.open({path!r}) for writing outside the sandbox folder")
        return original(path, flags, *args, **kwargs)

    return checked


PROCESS_CALLS = (
    "system", "popen", "fork", "forkpty", "vfork", "kill", "killpg", "abort", "_exit", "setsid",
    "posix_spawn", "posix_spawnp", "execv", "execve", "execl", "execle", "execlp", "execlpe", "execvp", "execvpe",
    "spawnv", "spawnve", "spawnl", "spawnle", "spawnlp", "spawnlpe", "spawnvp", "spawnvpe",
    "chdir", "fchdir", "chroot", "chmod", "chown", "lchown",
)  # fmt: skip
NETWORK_CALLS = ("socket", "create_connection", "create_server", "socketpair", "fromfd", "getaddrinfo", "gethostbyname")
PATH_CALLS = ("remove", "unlink", "rmdir", "removedirs", "mkdir", "makedirs", "truncate", "symlink", "link", "utime")


def install(root):
    """Install every guard; ``root`` is the only folder the program may write to."""
    root = os.path.realpath(root)
    for name in PROCESS_CALLS:
        if hasattr(os, name):
            setattr(os, name, _blocked(f"os.{name}"))
    for name in NETWORK_CALLS:
        if hasattr(socket, name):
            setattr(socket, name, _blocked(f"socket.{name}"))
    for module in ("_socket", "subprocess", "multiprocessing", "_posixsubprocess", "ctypes", "pty", "signal"):
        sys.modules[module] = None  # importing it now raises ImportError
    for name in PATH_CALLS:
        if hasattr(os, name):
            setattr(os, name, _guard_path(root, f"os.{name}", getattr(os, name)))
    for name in ("rename", "replace"):
        setattr(os, name, _guard_path(root, f"os.{name}", getattr(os, name), arguments=2))
    for name in ("rmtree", "move", "copy", "copy2", "copyfile", "copytree"):
        setattr(shutil, name, _blocked(f"shutil.{name}"))
    builtins.open = io.open = _guard_open(root, io.open)
    os.open = _guard_os_open(root, os.open)
