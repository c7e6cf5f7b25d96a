"""One trial as a ``python -m loralab train ...`` subprocess, its output in a log file.

Shared by the ``local`` executor with ``--workers N`` (:mod:`.pool`, one thread per running
trial) and the ``ray`` executor (:mod:`.ray_cluster`, one Ray task per trial). This module uses
the standard library only: Ray ships its functions to the worker nodes by value, so a Ray worker
runs them without importing loralab (and torch) itself; only the trial's subprocess does.

A trial is asked to stop by ``stop()`` returning a signal: SIGTERM is forwarded to the trial,
which saves a checkpoint of its last complete step and exits (``loralab study`` run again
resumes it); SIGKILL kills it and everything it started (its last checkpoint is kept).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Callable, NamedTuple

POLL_S = 0.2
TAIL_LINES = 20
#: exit statuses of a trial ended by a stop signal (128 + signum from ``loralab``, -signum when killed before)
STOP_STATUSES = frozenset({128 + signal.SIGINT, 128 + signal.SIGTERM, 128 + signal.SIGHUP,
                           -signal.SIGINT, -signal.SIGTERM, -signal.SIGHUP, -signal.SIGKILL})  # fmt: skip


class TrialProcessResult(NamedTuple):
    """How a trial's process ended: ``error`` None when it finished; ``stopped`` when a stop it was asked for ended it."""

    error: str | None
    seconds: float
    tail: str  # the last lines of its log, this attempt's only
    stopped: bool


def run_trial_process(argv: list[str], log_path: str, *, cwd: str | None = None, env: dict[str, str] | None = None,
                      stop: Callable[[], int | None] = lambda: None) -> TrialProcessResult:  # fmt: skip
    """Run ``python -m loralab ARGV`` (this interpreter), output appended to ``log_path``; return when it has
    exited. ``env``: variables set on top of this process's; ``stop()`` is polled and may ask for a signal."""
    started = time.monotonic()
    command = [sys.executable, "-m", "loralab", *argv]
    os.makedirs(os.path.dirname(log_path) or ".", exist_ok=True)
    with open(log_path, "ab") as log:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        log.write(f"\n# {stamp} on {os.uname().nodename}: python -m loralab {' '.join(argv)}\n".encode())
        log.flush()
        offset = log.tell()
        if stop():  # asked to stop before it began: nothing to run
            return TrialProcessResult(None, 0.0, "", True)
        # its own session: a Ctrl-C in the terminal reaches the study only, which forwards one SIGTERM
        child = subprocess.Popen(command, cwd=cwd, env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL,
                                 stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        sent: set[int] = set()
        try:
            while child.poll() is None:
                wanted = stop()
                if wanted and wanted not in sent:
                    _signal(child, wanted)
                    sent.add(wanted)
                time.sleep(POLL_S)
        except BaseException:  # interrupted here (a Ray cancel, a bug): never leave the trial running unseen
            _signal(child, signal.SIGTERM)
            child.wait()
            raise
    seconds = time.monotonic() - started
    tail = log_tail(log_path, offset)
    code = child.returncode
    if code == 0:
        return TrialProcessResult(None, seconds, tail, False)
    return TrialProcessResult(trial_error(tail, code), seconds, tail, bool(sent) and code in STOP_STATUSES)


def _signal(child: subprocess.Popen, signum: int) -> None:
    """SIGTERM to the trial alone (it stops its own work cleanly); SIGKILL to its whole process group."""
    try:
        if signum == signal.SIGKILL:
            os.killpg(child.pid, signal.SIGKILL)
        else:
            child.send_signal(signum)
    except ProcessLookupError:
        pass


def log_tail(log_path: str, offset: int = 0, lines: int = TAIL_LINES) -> str:
    """The last ``lines`` non-empty lines of the log written after ``offset``."""
    try:
        with open(log_path, "rb") as log:
            size = log.seek(0, os.SEEK_END)
            log.seek(max(offset, size - 64 * 1024))
            text = log.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    # progress bars and partial writes end with \r: keep the last state of each line
    kept = [line.rstrip("\r").rsplit("\r", 1)[-1].rstrip() for line in text.split("\n")]
    return "\n".join([line for line in kept if line.strip()][-lines:])


def trial_error(tail: str, code: int) -> str:
    """A failed trial's error: its last non-empty output line (loralab prints a user error as one line) and exit status."""
    last = tail.rsplit("\n", 1)[-1].strip() if tail else ""
    how = f"killed by {signal.Signals(-code).name}" if code < 0 and -code in signal.valid_signals() else f"exit code {code}"
    return f"{last} ({how})" if last else how


def stop_file_check(path: str) -> Callable[[], int | None]:
    """A ``stop`` for :func:`run_trial_process` that reads a file: absent → go on; ``TERM`` / ``KILL`` → that signal."""

    def stop() -> int | None:
        try:
            with open(path, encoding="utf-8") as handle:
                word = handle.read().strip()
        except OSError:
            return None
        return signal.SIGKILL if word == "KILL" else signal.SIGTERM

    return stop


def run_trial_task(argv: list[str], log_path: str, cwd: str, env: dict[str, str], stop_path: str) -> tuple:
    """The body of a Ray task: :func:`run_trial_process` in the study's working folder, stopped through
    ``stop_path`` (on the shared study folder). Returns (error, seconds, log tail, stopped)."""
    if not os.path.isdir(cwd):
        node = os.uname().nodename
        return (f"folder {cwd} does not exist on node {node}: the study folder (and the recipe and data) must be on "
                f"storage that every Ray node sees at the same path", 0.0, "", False)  # fmt: skip
    log_path, stop_path = os.path.join(cwd, log_path), os.path.join(cwd, stop_path)  # relative paths: the study's
    return tuple(run_trial_process(argv, log_path, cwd=cwd, env=env, stop=stop_file_check(stop_path)))
