"""Hostile samples: none may pass, leave the sandbox, outlive it, or stop the evaluation.

Every attack runs twice: with every layer this machine offers, and without the namespaces
(as on a machine where user namespaces are disabled), so the kernel confinement is shown to
hold on its own. The attacks use ``posix`` and ``_io`` directly, which the in-process guard
does not cover: what stops them is the kernel.
"""

import os
import socket
import time

import pytest

from loralab.eval import SandboxLimits, run_programs
from loralab.eval import sandbox
from loralab.eval.sandbox import ProgramTest

LIMITS = SandboxLimits(timeout=4, memory_mb=512)
RIGHT = "def f(a, b):\n    return a + b\n"
CHECK = "def check(c):\n    assert c(2, 3) == 5\n    assert c(-1, 1) == 0\n"
WRONG_TAIL = "\ndef f(a, b):\n    return 0\n"  # every forging attempt comes with a wrong solution


@pytest.fixture(params=["all-layers", "no-namespaces"])
def layers(request, monkeypatch):
    if request.param == "all-layers" and not sandbox._namespace_prefix():
        pytest.skip("user namespaces are not available on this machine")
    if request.param == "no-namespaces":
        monkeypatch.setattr(sandbox, "_namespace_prefix", lambda: ())
    needed = {"landlock", "seccomp"}
    if not needed <= set(sandbox.sandbox_layers()):
        pytest.skip("this kernel lacks Landlock or seccomp")
    return request.param


def escapes(outside):
    """Attacks on the machine; each would create ``outside`` (or data at a listener) if it got out."""
    target = repr(str(outside))
    return {
        "posix.system": f"import posix\nposix.system('touch ' + {target})\n",
        "posix.fork": f"import posix\nif posix.fork() == 0:\n    open({target}, 'w').close()\n",
        "io.FileIO": f"import io\nio.FileIO({target}, 'w').write(b'x')\n",
        "_io.open": f"import _io\n_io.open({target}, 'w').write('x')\n",
        "posix.open": f"import posix\nposix.write(posix.open({target}, posix.O_WRONLY | posix.O_CREAT), b'x')\n",
        "symlink second argument": f"import posix\nopen('inside', 'w').close()\nposix.symlink('inside', {target})\n",
        "link second argument": f"import posix\nopen('inside', 'w').close()\nposix.link('inside', {target})\n",
        "mkfifo": f"import posix\nposix.mkfifo({target})\n",
        "rename out of the folder": f"import posix\nopen('inside', 'w').close()\nposix.rename('inside', {target})\n",
        "ctypes libc.system": (
            "import sys\nsys.modules.pop('ctypes', None)\nimport importlib\nctypes = importlib.import_module('ctypes')\n"
            f"ctypes.CDLL(None).system(('touch ' + {target}).encode())\n"
        ),
        "execv": f"import posix\nposix.execv('/bin/touch', ['touch', {target}])\n",
        "setsid child writing later": (
            "import posix, time\nif posix.fork() == 0:\n    posix.setsid()\n    time.sleep(1)\n"
            f"    open({target}, 'w').close()\n"
        ),
    }


def test_no_sample_gets_out_of_its_folder(layers, tmp_path):
    attacks = escapes(tmp_path / "escaped")
    programs = {name: ProgramTest(code + WRONG_TAIL, CHECK, "f") for name, code in attacks.items()}
    programs |= {f"{name} (in the tests)": ProgramTest(RIGHT, code + CHECK, "f") for name, code in attacks.items()}
    results = dict(zip(programs, run_programs(list(programs.values()), LIMITS, workers=2)))
    time.sleep(1.5)  # the delayed writer would have written by now
    assert not (tmp_path / "escaped").exists(), "a sample wrote outside its folder"
    for name, result in results.items():  # a hostile test row may pass itself; it may not get out
        if "(in the tests)" not in name:
            assert result.status in ("failed", "error"), f"{name}: {result}"


def test_no_data_leaves_by_the_network(layers):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.setblocking(False)
    port = server.getsockname()[1]
    tcp = [
        f"import socket\ns = socket.SocketType(socket.AF_INET, socket.SOCK_STREAM)\ns.connect(('127.0.0.1', {port}))\ns.send(b'secret')\n",
        f"import _socket\ns = _socket.socket()\ns.connect(('127.0.0.1', {port}))\n",
        "import socket\ns = socket.SocketType(socket.AF_UNIX, socket.SOCK_STREAM)\ns.connect('/run/docker.sock')\n",
    ]
    results = run_programs([ProgramTest(code + WRONG_TAIL, CHECK, "f") for code in tcp], LIMITS)
    try:
        with pytest.raises(BlockingIOError):
            server.accept()
    finally:
        server.close()
    assert not any(r.passed for r in results)


FORGERIES = {
    "exit 0 before the tests": "import posix\nposix._exit(0)\n",
    "sys.exit(0)": "import sys\nsys.exit(0)\n",
    "read the caller's frames and print a pass": (
        "import sys\nframe = sys._getframe()\nwhile frame:\n    print(frame.f_locals)\n    frame = frame.f_back\n"
        "print('passed')\n"
    ),
    "an answer equal to everything": (
        "class Everything:\n    def __eq__(self, other):\n        return True\n    __hash__ = None\n"
        "def f(a, b):\n    return Everything()\n"
    ),
    "an int subclass equal to everything": (
        "class Liar(int):\n    def __eq__(self, other):\n        return True\n"
        "def f(a, b):\n    return Liar(0)\n"
    ),
    "a fake verdict on every descriptor": (
        "import posix, json\nfake = json.dumps({'layers': [], 'test': {'exit': 0}}).encode()\n"
        "for fd in range(3, 64):\n    try:\n        posix.write(fd, len(fake).to_bytes(8, 'little') + fake)\n    except OSError:\n        pass\n"
    ),
    "rewrite the tests before they are read": (
        "for name in ('test.py', 'context.py'):\n    open(name, 'w').write('def check(c):\\n    pass\\n')\n"
    ),
    "kill the tests process": (
        "import posix\nfor pid in range(1, 4096):\n    if pid != posix.getpid():\n        try:\n"
        "            posix.kill(pid, 9)\n        except OSError:\n            pass\n"
    ),
    "write into the tests process's memory": (
        "import posix\nfor pid in range(1, 64):\n    try:\n        posix.open(f'/proc/{pid}/mem', posix.O_RDWR)\n"
        "        print('opened', pid)\n    except OSError:\n        pass\n"
    ),
    # the solution owns its reply pipe: it may say anything there, but only data (a lookup table of
    # answers is a solution, not a forgery); objects and exits dressed as replies are refused
    "a reply carrying a pickled object": (
        "import posix, json, pickle\nreply = json.dumps(['ok', ['pickle', pickle.dumps(0).hex()], []]).encode()\n"
        "for fd in range(3, 64):\n    try:\n        posix.write(fd, len(reply).to_bytes(8, 'little') + reply)\n    except OSError:\n        pass\n"
    ),
    "a reply raising SystemExit in the tests": (
        "import posix, json\nreply = json.dumps(['raised', 'builtins', 'SystemExit', '0']).encode()\n"
        "for fd in range(3, 64):\n    try:\n        posix.write(fd, len(reply).to_bytes(8, 'little') + reply)\n    except OSError:\n        pass\n"
    ),
}


def test_no_completion_forges_a_pass(layers):
    programs = [ProgramTest(code + ("" if "def f" in code else WRONG_TAIL), CHECK, "f") for code in FORGERIES.values()]
    results = run_programs(programs, LIMITS, workers=2)
    for name, result in zip(FORGERIES, results):
        assert not result.passed, f"{name}: {result}"
    # and the same harness passes the honest solution: the attacks failed for the right reason
    assert run_programs([ProgramTest(RIGHT, CHECK, "f")], LIMITS)[0].passed


def test_hostile_samples_cannot_stop_the_evaluation(layers):
    killers = [
        ProgramTest(RIGHT, "import posix\nposix.kill(posix.getppid(), 9)\n" + CHECK, "f"),
        ProgramTest("import posix\nposix.kill(posix.getppid(), 9)\n" + RIGHT, CHECK, "f"),
        ProgramTest("import posix\nposix.kill(0, 9)\nposix.kill(-1, 9)\n" + RIGHT, CHECK, "f"),
        ProgramTest("import posix\nwhile True:\n    posix.fork()\n" + RIGHT, CHECK, "f"),
        ProgramTest(RIGHT, CHECK, "f"),
    ]
    results = run_programs(killers, LIMITS, workers=2)
    assert len(results) == len(killers) and results[-1].passed
    assert os.getppid() > 1  # this process (the evaluator) is alive and still has its parent


def test_the_kernel_refuses_the_denied_system_calls(layers):
    """Called directly through libc (no Python wrapper to guard), each denied call fails with EPERM."""
    import platform

    from loralab.eval.sandbox_confine import DENIED_SYSCALLS

    column = {"x86_64": 0, "aarch64": 1}.get(platform.machine())
    if column is None:
        pytest.skip("no seccomp table for this architecture")
    unsafe = {"fork", "vfork"}  # if the filter failed these would really run; posix.fork is tested above
    numbers = {name: pair[column] for name, pair in DENIED_SYSCALLS.items() if pair[column] is not None and name not in unsafe}
    probe = (
        "import sys, posix, threading\nsys.modules.pop('ctypes', None)\nimport importlib\n"
        "ctypes = importlib.import_module('ctypes')\nlibc = ctypes.CDLL(None, use_errno=True)\nlibc.syscall.restype = ctypes.c_long\n"
        f"for name, number in {numbers!r}.items():\n"
        "    ctypes.set_errno(0)\n    result = libc.syscall(number, 0, 0, 0, 0, 0, 0)\n"
        "    assert result == -1 and ctypes.get_errno() == 1, (name, result, ctypes.get_errno())\n"
        "try:\n    posix.open(f'/proc/{posix.getppid()}/mem', posix.O_RDONLY)\nexcept PermissionError:\n    pass\n"
        "else:\n    raise AssertionError('the runner memory is readable')\n"
        "thread = threading.Thread(target=print)\nthread.start()\nthread.join()\n"
    )
    assert len(numbers) > 25
    results = run_programs([probe, ProgramTest(RIGHT, probe + CHECK, "f")], LIMITS)
    assert [r.status for r in results] == ["passed", "passed"], results


def test_a_crashing_runner_is_an_error_not_a_crash(monkeypatch):
    monkeypatch.setattr(sandbox, "_runner_source", lambda: "import os\nos._exit(3)\n")
    [result] = run_programs([ProgramTest(RIGHT, CHECK, "f")], LIMITS)
    assert result.status == "error" and "without a verdict" in result.reason
