import pytest

from loralab.errors import ConfigError
from loralab.eval import SandboxLimits, run_program, run_programs

LIMITS = SandboxLimits(timeout=1.5, memory_mb=512)


def test_each_program_is_scored_and_the_run_continues(tmp_path):
    outside = tmp_path / "escape.txt"
    programs = {
        "pass": "def add(a, b):\n    return a + b\n\ndef check(f):\n    assert f(2, 3) == 5\n\ncheck(add)\n",
        "fail": "def check(f):\n    assert f(2) == 5, 'wrong'\n\ncheck(lambda x: x)\n",
        "loop": "while True:\n    pass\n",
        "system": "import os\nos.system('echo escaped')\n",
        "subprocess": "import subprocess\nsubprocess.run(['true'])\n",
        "fork": "import os\nos.fork()\n",
        "socket": "import socket\nsocket.socket().connect(('127.0.0.1', 80))\n",
        "write": f"open({str(outside)!r}, 'w').write('x')\n",
        "exit": "import sys\nsys.exit(0)\nassert False\n",
        "after": "assert sum(range(4)) == 6\n",
    }
    results = dict(zip(programs, run_programs(list(programs.values()), LIMITS, workers=2)))
    assert results["pass"].status == "passed" and results["after"].status == "passed"
    assert results["fail"].status == "failed" and "wrong" in results["fail"].reason
    assert results["loop"].status == "timeout"
    assert results["loop"].seconds < 5
    assert results["system"].status == "failed" and "os.system" in results["system"].reason
    assert results["subprocess"].status == "failed" and "subprocess" in results["subprocess"].reason
    assert results["fork"].status == "failed" and "os.fork" in results["fork"].reason
    assert results["socket"].status == "failed" and "socket" in results["socket"].reason
    assert results["write"].status == "failed" and "outside" in results["write"].reason
    assert not outside.exists()
    assert results["exit"].status == "failed"


def test_writing_inside_the_folder_is_allowed_and_memory_is_limited():
    inside = "open('notes.txt', 'w').write('ok')\nassert open('notes.txt').read() == 'ok'\n"
    assert run_program(inside, LIMITS).passed
    hog = run_program("block = bytearray(2 * 1024 ** 3)\n", LIMITS)
    assert hog.status in ("failed", "error") and not hog.passed


def test_bad_limits():
    with pytest.raises(ConfigError):
        SandboxLimits(timeout=0)
    with pytest.raises(ConfigError):
        run_programs(["pass"], LIMITS, workers=0)


def test_reference_solutions_of_pycode_pass_and_wrong_ones_fail():
    from loralab.data.tasks import PyCodeTask, assemble_program

    task = PyCodeTask()
    problems = task.test(4, seed=1)
    right = [assemble_program(p, task.to_record(p).response) for p in problems]
    wrong = [assemble_program(p, f"```python\ndef {p.entry_point}(*args):\n    return None\n```") for p in problems]
    results = run_programs(right + wrong, LIMITS)
    assert [r.status for r in results[:4]] == ["passed"] * 4
    assert all(r.status == "failed" for r in results[4:])
