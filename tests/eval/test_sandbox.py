"""The sandbox runs honest solutions as they would run in one process, and scores them."""

import pytest

from loralab.errors import ConfigError
from loralab.eval import SandboxLimits, run_program, run_programs
from loralab.eval.sandbox import ProgramTest, sandbox_layers

LIMITS = SandboxLimits(timeout=5, memory_mb=512)


def sample(solution: str, test: str, entry: str = "f", context: str = "") -> ProgramTest:
    return ProgramTest(solution, test, entry, context)


def test_outcomes_pass_fail_timeout_and_the_run_continues():
    add = "def f(a, b):\n    return a + b\n"
    programs = [
        sample(add, "def check(c):\n    assert c(2, 3) == 5\n"),
        sample("def f(a, b):\n    return a - b\n", "def check(c):\n    assert c(2, 3) == 5, 'wrong sum'\n"),
        sample("def f(a, b):\n    while True:\n        pass\n", "def check(c):\n    c(1, 2)\n"),
        sample("def g(a, b):\n    return a + b\n", "def check(c):\n    assert c(2, 3) == 5\n"),
        sample("def f(:\n    return 1\n", "def check(c):\n    assert c(2, 3) == 5\n"),
        sample(add, "def check(c):\n    assert c(1, 1) == 2\n"),
    ]
    passed, wrong, loop, missing, syntax, after = run_programs(programs, SandboxLimits(timeout=2, memory_mb=512))
    assert passed.status == "passed" and after.status == "passed"
    assert wrong.status == "failed" and "wrong sum" in wrong.reason
    assert loop.status == "timeout" and loop.seconds < 6
    assert missing.status == "failed" and "defines no function 'f'" in missing.reason
    assert syntax.status == "failed" and "SyntaxError" in syntax.reason


def test_results_and_exceptions_cross_as_the_values_they_are():
    solution = (
        "import math\n"
        "def helper(x):\n    return x * 2\n"
        "def f(kind, x=None):\n"
        "    if kind == 'raise':\n        raise ValueError('negative input')\n"
        "    if kind == 'custom':\n        class Mine(Exception): pass\n        raise Mine('mine')\n"
        "    return {'tuple': (1, 'a', None), 'float': 0.1 + 0.2, 'nan': math.nan, 'big': 3 ** 200,\n"
        "            'bytes': b'\\x00\\xff', 'set': {1, 2}, 'nested': [[1], {'k': (2.5, True)}],\n"
        "            'complex': 1 + 2j, 'helper': helper(21), 'unicode': 'naïve \\u2603'}[kind]\n"
    )
    test = (
        "import math\n"
        "def check(c):\n"
        "    assert c('tuple') == (1, 'a', None) and type(c('tuple')) is tuple\n"
        "    assert c('float') == 0.1 + 0.2\n"
        "    assert math.isnan(c('nan'))\n"
        "    assert c('big') == 3 ** 200\n"
        "    assert c('bytes') == b'\\x00\\xff'\n"
        "    assert c('set') == {1, 2}\n"
        "    assert c('nested') == [[1], {'k': (2.5, True)}]\n"
        "    assert c('complex') == 1 + 2j and c('helper') == 42 and c('unicode') == 'naïve \\u2603'\n"
        "    try:\n        c('raise')\n    except ValueError as error:\n        assert 'negative' in str(error)\n"
        "    else:\n        raise AssertionError('no ValueError')\n"
        "    try:\n        c('custom')\n    except RuntimeError as error:\n        assert 'Mine' in str(error)\n"
    )
    assert run_program(sample(solution, test), LIMITS).status == "passed"


def test_in_place_changes_to_arguments_are_seen_by_the_tests():
    solution = "def f(items, table):\n    items.sort()\n    table['n'] = len(items)\n"
    test = "def check(c):\n    xs, t = [3, 1, 2], {}\n    assert c(xs, t) is None\n    assert xs == [1, 2, 3] and t == {'n': 3}\n"
    assert run_program(sample(solution, test), LIMITS).passed
    lazy = "def f(items, table):\n    return sorted(items)\n"
    assert run_program(sample(lazy, test), LIMITS).status == "failed"


def test_the_tests_may_use_the_prompts_helpers_and_the_solution_its_own():
    context = "import math\n\ndef poly(xs, x):\n    return sum(c * x ** i for i, c in enumerate(xs))\n\ndef f(xs):\n    '''A zero of poly.'''\n"
    solution = context + "    lo, hi = -100.0, 100.0\n    for _ in range(200):\n        mid = (lo + hi) / 2\n" \
        "        if poly(xs, lo) * poly(xs, mid) <= 0:\n            hi = mid\n        else:\n            lo = mid\n    return lo\n"
    test = "def check(c):\n    assert abs(poly([-6, 11, -6, 1], c([-6, 11, -6, 1]))) < 1e-6\n"
    assert run_program(sample(solution, test, context=context), LIMITS).passed


def test_threads_and_writing_inside_the_folder_still_work():
    solution = (
        "import threading\n"
        "def f(n):\n"
        "    out = []\n"
        "    threads = [threading.Thread(target=out.append, args=(i,)) for i in range(n)]\n"
        "    [t.start() for t in threads]; [t.join() for t in threads]\n"
        "    open('notes.txt', 'w').write(str(sorted(out)))\n"
        "    return open('notes.txt').read()\n"
    )
    assert run_program(sample(solution, "def check(c):\n    assert c(3) == '[0, 1, 2]'\n"), LIMITS).passed


def test_a_value_that_is_not_data_fails_with_a_reason():
    generator = sample("def f():\n    return (i for i in range(3))\n", "def check(c):\n    assert list(c()) == [0, 1, 2]\n")
    result = run_program(generator, LIMITS)
    assert result.status == "failed" and "cannot leave its process" in result.reason


def test_memory_is_limited():
    hog = run_program(sample("def f():\n    return len(bytearray(2 * 1024 ** 3))\n", "def check(c):\n    c()\n"), LIMITS)
    assert hog.status in ("failed", "error") and not hog.passed


def test_a_self_judging_script():
    assert run_program("assert sum(range(4)) == 6\n", LIMITS).passed
    assert run_program("assert sum(range(4)) == 7\n", LIMITS).status == "failed"


def test_bad_limits():
    with pytest.raises(ConfigError):
        SandboxLimits(timeout=0)
    with pytest.raises(ConfigError):
        run_programs(["pass"], LIMITS, workers=0)


def test_layers_named():
    layers = sandbox_layers()
    assert layers[-2:] == ["two-processes", "guard"]
    assert set(layers) <= {"namespaces", "landlock", "seccomp", "two-processes", "guard"}


def test_reference_solutions_of_pycode_pass_and_wrong_ones_fail():
    from loralab.data.tasks import PyCodeTask
    from loralab.eval.tasks.code_task import _program_test

    task = PyCodeTask()
    problems = task.test(4, seed=1)
    right = [_program_test(p, task.to_record(p).response) for p in problems]
    wrong = [_program_test(p, f"```python\ndef {p.entry_point}(*args):\n    return None\n```") for p in problems]
    results = run_programs(right + wrong, LIMITS)
    assert [r.status for r in results[:4]] == ["passed"] * 4
    assert all(r.status == "failed" for r in results[4:])


def test_humaneval_canonical_solutions_pass_in_the_sandbox():
    from pathlib import Path

    from loralab.data.benchmarks.humaneval import read_humaneval
    from loralab.eval.tasks.code_task import _program_test

    problems = read_humaneval(Path(__file__).parents[1] / "data" / "fixtures" / "humaneval.jsonl")
    results = run_programs([_program_test(p, p.canonical_solution) for p in problems], LIMITS)
    assert [r.status for r in results] == ["passed"] * len(problems)
    broken = run_programs([_program_test(p, "    return None\n") for p in problems], LIMITS)
    assert not any(r.passed for r in broken)
