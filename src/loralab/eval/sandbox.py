"""Running untrusted Python (a model's completion against a problem's tests) behind kernel-held walls.

One sample = one sandbox folder (the only place anything may be written) and a trusted runner
(:mod:`.sandbox_runner`) started as ``python -I runner.py``:

* **namespaces**, where unprivileged user namespaces work (probed once): the runner is PID 1 of a
  new PID namespace (the sample sees no other process; when the runner ends, the kernel kills
  everything in it) with no network (a new network namespace);
* **two processes**: the model's code runs in the *solution* process; the tests run in the *tests*
  process and reach the solution only through calls whose results come back as plain data. The
  verdict is the tests process's exit status, sent by the runner over a descriptor no child holds;
  nothing the model's code prints or does can forge a pass;
* **kernel confinement** of both (:mod:`.sandbox_confine`): Landlock (writes only inside the
  folder), seccomp (no sockets, new processes, exec, signals to others, ptrace, mounts), no
  capabilities, not dumpable;
* **the in-process guard** (:mod:`.sandbox_guard`) as a second layer that gives readable reasons;
* a wall-clock limit (the whole session is killed), RLIMIT_AS memory, a largest-file size.

Where a layer is missing (not Linux, an old kernel, user namespaces disabled), the sample still
runs, with the layers that exist; :func:`sandbox_layers` says which, and the first run warns once.

A sample passes when ``check(candidate)`` returns; an exception (a failed assert, a blocked call,
the solution dying mid-call) fails it; ``timeout`` and ``error`` (a process killed by a signal,
e.g. out of memory, or a runner that ended without a verdict) are reported apart. A sample never
raises: whatever it does is its own result.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from loralab.errors import ConfigError

STATUSES = ("passed", "failed", "timeout", "error")
HERE = Path(__file__).parent
RUNNER_PARTS = ("sandbox_confine.py", "sandbox_guard.py", "sandbox_runner.py")
CONFINE_FAILED = 97
NAMESPACES = ["unshare", "--user", "--map-root-user", "--net", "--pid", "--fork", "--kill-child", "--mount", "--mount-proc"]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProgramTest:
    """One sample: ``solution`` (the model's code, untrusted) is called as ``entry_point`` by the
    problem's ``test`` (defines ``check(candidate)``), which may use ``context`` (the problem's
    prompt: its imports and helper functions; the solution's code is never run with the tests)."""

    solution: str
    test: str
    entry_point: str
    context: str = ""


@dataclass(frozen=True)
class SandboxLimits:
    """Limits of one run: wall-clock seconds, address space (MiB), largest file written (MiB)."""

    timeout: float = 10.0
    memory_mb: int = 1024
    file_mb: int = 16

    def __post_init__(self) -> None:
        if not self.timeout > 0 or self.memory_mb < 64 or self.file_mb < 1:
            raise ConfigError(f"Invalid sandbox limits {self}: timeout > 0 s, memory_mb >= 64, file_mb >= 1.")


@dataclass(frozen=True)
class SandboxResult:
    """Outcome of one program: ``status`` is one of STATUSES; ``reason`` a short line (empty if passed)."""

    status: str
    reason: str
    seconds: float

    @property
    def passed(self) -> bool:
        return self.status == "passed"


def sandbox_layers() -> list[str]:
    """The walls this machine gives a sample: "namespaces", "landlock", "seccomp" where available,
    then "two-processes" and "guard" (always)."""
    from loralab.eval.sandbox_confine import available_layers

    return (["namespaces"] if _namespace_prefix() else []) + available_layers() + ["two-processes", "guard"]


def run_program(program: ProgramTest | str, limits: SandboxLimits = SandboxLimits()) -> SandboxResult:
    """Run one sample (a :class:`ProgramTest`, or a self-judging script: passed = it ran to its end)."""
    start = time.perf_counter()
    try:
        return _run(program, limits, start)
    except Exception as error:  # noqa: BLE001 - a sample never stops the evaluation
        return SandboxResult("error", f"the sandbox failed: {type(error).__name__}: {error}"[:300], time.perf_counter() - start)


def run_programs(
    programs: Sequence[ProgramTest | str], limits: SandboxLimits = SandboxLimits(), *, workers: int = 2
) -> list[SandboxResult]:
    """Run every sample, ``workers`` at a time; results in the order of ``programs``."""
    if workers < 1:
        raise ConfigError(f"The sandbox needs at least one worker, got {workers}.")
    _warn_missing_layers()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda program: run_program(program, limits), programs))


def _run(program: ProgramTest | str, limits: SandboxLimits, start: float) -> SandboxResult:
    if isinstance(program, str):
        program, mode = ProgramTest("", program, "-"), "script"
    else:
        mode = "check"
    with tempfile.TemporaryDirectory(prefix="loralab-sandbox-") as folder:
        root = Path(folder)
        for name, text in (("solution.py", program.solution), ("test.py", program.test), ("context.py", program.context)):
            (root / name).write_text(text, encoding="utf-8", errors="surrogatepass")
        (root / "runner.py").write_text(_runner_source(), encoding="utf-8")
        env = {"HOME": folder, "TMPDIR": folder, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0"}
        verdict_read, verdict_write = os.pipe()
        try:
            with open(root / "runner.err", "wb") as err:
                process = subprocess.Popen(
                    [*_namespace_prefix(), sys.executable, "-I", "runner.py", str(verdict_write), mode, program.entry_point],
                    cwd=folder, env=env, stdin=subprocess.DEVNULL, stdout=err, stderr=err, pass_fds=(verdict_write,),
                    start_new_session=True, preexec_fn=_limiter(limits),
                )  # fmt: skip
            os.close(verdict_write)
            verdict_write = -1
            try:
                code = process.wait(timeout=limits.timeout)
            except subprocess.TimeoutExpired:
                _kill_group(process)
                return SandboxResult("timeout", f"no result within {limits.timeout:g} s", time.perf_counter() - start)
            _kill_group(process)  # anything left running
            verdict = _read_verdict(verdict_read)
        finally:
            for descriptor in (verdict_read, verdict_write):
                if descriptor >= 0:
                    os.close(descriptor)
        reasons = {name: _last_line(_read(root / name)) for name in ("test.err", "solution.err", "runner.err")}
    return _judge(verdict, code, reasons, time.perf_counter() - start)


@functools.cache
def _runner_source() -> str:
    return "\n\n".join((HERE / name).read_text(encoding="utf-8") for name in RUNNER_PARTS)


@functools.cache
def _namespace_prefix() -> tuple[str, ...]:
    """The ``unshare`` command that puts a sample in new user, PID, network and mount namespaces, or
    () where that does not work here (no ``unshare``, user namespaces disabled)."""
    if not sys.platform.startswith("linux") or shutil.which("unshare") is None:
        return ()
    command = [shutil.which("unshare"), *NAMESPACES[1:], sys.executable, "-I", "-c", "import os; assert os.getpid() == 1"]
    try:
        probe = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ()
    return (command[0], *NAMESPACES[1:]) if probe.returncode == 0 else ()


@functools.cache
def _warn_missing_layers() -> None:
    missing = [name for name in ("namespaces", "landlock", "seccomp") if name not in sandbox_layers()]
    if missing:
        log.warning("sandbox: %s not available on this machine; code samples run with %s only",
                    ", ".join(missing), ", ".join(sandbox_layers()))  # fmt: skip


def _read_verdict(descriptor: int) -> dict | None:
    chunks = []
    while select.select([descriptor], [], [], 1.0)[0]:
        chunk = os.read(descriptor, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    data = b"".join(chunks)
    try:
        report = json.loads(data[8:]) if len(data) > 8 else None
    except ValueError:
        return None
    return report if isinstance(report, dict) and isinstance(report.get("test"), dict) else None


def _read(path: Path) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(max(0, path.stat().st_size - 16384))
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _limiter(limits: SandboxLimits):
    memory, files = limits.memory_mb * 2**20, limits.file_mb * 2**20

    def apply() -> None:  # runs in the child between fork and exec: only setrlimit calls
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_FSIZE, (files, files))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


def _judge(verdict: dict | None, code: int, reasons: dict[str, str], seconds: float) -> SandboxResult:
    """The tests process's exit status, as the runner reported it, decides; nothing else can pass."""
    if verdict is None:
        how = f"killed by signal {_signal_name(-code)}" if code < 0 else f"exit status {code}"
        detail = reasons["runner.err"] or reasons["test.err"]
        return SandboxResult("error", f"the sandbox runner ended without a verdict ({how})" + (f": {detail}" if detail else ""), seconds)
    test = verdict["test"]
    if "signal" in test:
        return SandboxResult("error", f"the tests process was killed by signal {_signal_name(test['signal'])}", seconds)
    status = test.get("exit")
    if status == 0:
        return SandboxResult("passed", "", seconds)
    if status == CONFINE_FAILED:
        return SandboxResult("error", reasons["test.err"] or "the sandbox could not confine the tests process", seconds)
    if status == 1:
        return SandboxResult("failed", (reasons["test.err"] or "the tests raised an exception")[:300], seconds)
    return SandboxResult("error", f"the tests process ended with exit status {status}", seconds)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""
