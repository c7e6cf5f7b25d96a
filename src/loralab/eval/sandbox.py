"""Running untrusted Python (a model's completion plus its tests) in a separate, limited process.

Each program runs as ``python -I runner.py`` in a fresh temporary folder that is
its working directory, HOME and TMPDIR, in a new session (process group), with:

* a wall-clock limit: on timeout the whole process group is killed (SIGKILL);
* a memory limit: RLIMIT_AS set in ``preexec_fn`` (plus small file-size and no core dumps);
* guards installed before the program runs (:mod:`loralab.eval.sandbox_guard`): no
  sockets, no ``os.system`` / ``subprocess`` / fork / exec / kill, no writes outside the folder.

The guards stop accidents and naive escapes; they are NOT a security boundary
(Python code can undo them). Evaluate hostile code inside a container or VM.

A program passes when it runs to its end; an exception (a failed assert, a
blocked call, a syntax error) fails it; ``timeout`` and ``error`` (killed by a
signal, e.g. out of memory, or exiting abnormally) are reported apart.
"""

from __future__ import annotations

import os
import resource
import secrets
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
GUARD_SOURCE = Path(__file__).with_name("sandbox_guard.py")
RUNNER = """

def _main(nonce):
    import os, sys
    with open("program.py", encoding="utf-8") as handle:
        source = handle.read()
    write, root = os.write, os.getcwd()
    install(root)
    namespace = {"__name__": "__main__", "__builtins__": __builtins__}
    try:
        exec(compile(source, "program.py", "exec"), namespace)
    except SystemExit as stop:
        sys.stderr.write(f"SystemExit: the program exited ({stop.code!r}) before its tests finished\\n")
        sys.exit(1)
    sys.stdout.flush()
    write(1, ("\\n" + nonce + "\\n").encode())


_main(%r)
"""


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


def run_program(source: str, limits: SandboxLimits = SandboxLimits()) -> SandboxResult:
    """Run ``source`` in a fresh sandboxed process and report how it ended."""
    nonce = secrets.token_hex(16)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="loralab-sandbox-") as folder:
        root = Path(folder)
        (root / "program.py").write_text(source, encoding="utf-8")
        (root / "runner.py").write_text(GUARD_SOURCE.read_text(encoding="utf-8") + RUNNER % nonce, encoding="utf-8")
        env = {"HOME": folder, "TMPDIR": folder, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0"}
        with open(root / "stdout.txt", "wb") as out, open(root / "stderr.txt", "wb") as err:
            process = subprocess.Popen(
                [sys.executable, "-I", "runner.py"],
                cwd=folder, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                start_new_session=True, preexec_fn=_limiter(limits),
            )  # fmt: skip
            try:
                code = process.wait(timeout=limits.timeout)
            except subprocess.TimeoutExpired:
                _kill_group(process)
                return SandboxResult("timeout", f"no result within {limits.timeout:g} s", time.perf_counter() - start)
            _kill_group(process)  # anything the program left running
        stdout = (root / "stdout.txt").read_bytes().decode("utf-8", "replace")
        stderr = (root / "stderr.txt").read_bytes().decode("utf-8", "replace")
    return _judge(code, stdout, stderr, nonce, time.perf_counter() - start)


def run_programs(
    sources: Sequence[str], limits: SandboxLimits = SandboxLimits(), *, workers: int = 2
) -> list[SandboxResult]:
    """Run every program, ``workers`` at a time; results in the order of ``sources``."""
    if workers < 1:
        raise ConfigError(f"The sandbox needs at least one worker, got {workers}.")
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda source: run_program(source, limits), sources))


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


def _judge(code: int, stdout: str, stderr: str, nonce: str, seconds: float) -> SandboxResult:
    if code == 0 and stdout.rstrip().endswith(nonce):
        return SandboxResult("passed", "", seconds)
    if code < 0:
        return SandboxResult("error", f"killed by signal {signal.Signals(-code).name}", seconds)
    last = _last_line(stderr)
    if code == 1 and last:
        return SandboxResult("failed", last[:300], seconds)
    return SandboxResult("error", f"exit status {code}" + (f": {last[:300]}" if last else ""), seconds)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""
