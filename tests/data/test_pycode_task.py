"""The pycode generator: canonical solutions pass their hidden tests, wrong ones fail; splits disjoint."""

import ast

import pytest

from loralab.data.tasks import PyCodeTask, assemble_program
from loralab.data.tasks.pycode import TEMPLATES, extract_code

TASK = PyCodeTask()


def passes(program: str) -> bool:
    namespace: dict = {}
    try:
        exec(compile(program, "<problem>", "exec"), namespace)
    except Exception:
        return False
    return True


def template(problem) -> str:
    return problem.task_id.split("/")[1]


@pytest.fixture(scope="module")
def problems():
    return TASK.train(250, seed=0) + TASK.test(80, seed=0)


def test_at_least_fifteen_templates_are_used(problems):
    assert len(TEMPLATES) >= 15
    assert len({template(problem) for problem in problems}) >= 15


def test_canonical_solutions_pass_and_wrong_ones_fail(problems):
    for problem in problems:
        assert passes(problem.prompt + problem.canonical_solution + "\n" + problem.test + f"\ncheck({problem.entry_point})")
        assert passes(assemble_program(problem, problem.canonical_solution)), problem.task_id
        assert not passes(assemble_program(problem, "    return None\n")), problem.task_id
    for problem, other in zip(problems, problems[1:]):
        if template(problem) != template(other):  # another template's solution is wrong here
            assert not passes(assemble_program(problem, other.canonical_solution)), problem.task_id


def test_humaneval_shape(problems):
    for problem in problems:
        tree = ast.parse(problem.prompt + problem.canonical_solution)
        function = tree.body[-1]
        assert isinstance(function, ast.FunctionDef) and function.name == problem.entry_point
        docstring = ast.get_docstring(function)
        assert ">>> " + problem.entry_point + "(" in docstring
        check = ast.parse(problem.test).body[0]
        assert check.name == "check" and [a.arg for a in check.args.args] == ["candidate"]
        assert sum(isinstance(node, ast.Assert) for node in check.body) >= 4


def test_docstring_example_is_true(problems):
    for problem in problems:
        namespace: dict = {}
        exec(problem.prompt + problem.canonical_solution, namespace)
        lines = ast.get_docstring(ast.parse(problem.prompt).body[-1]).splitlines()
        call = next(i for i, line in enumerate(lines) if line.startswith(">>> "))
        assert eval(lines[call][4:], namespace) == ast.literal_eval(lines[call + 1])


def test_record_response_is_a_runnable_function(problems):
    for problem in problems[:50]:
        record = TASK.to_record(problem)
        assert problem.prompt in record.prompt and "check(" not in record.prompt
        assert record.response.startswith("```python\ndef ") and record.response.endswith("```")
        assert passes(assemble_program(problem, record.response))
        assert not passes(assemble_program(problem, record.response.replace("return", "return None and", 1)))


def test_same_seed_same_problems_different_seed_different():
    assert TASK.train(30, seed=4) == PyCodeTask().train(30, seed=4)
    assert TASK.train(30, seed=4) != TASK.train(30, seed=5)


def test_train_and_test_disjoint_across_seeds():
    train = {p.task_id for seed in range(3) for p in TASK.train(200, seed=seed)}
    test = {p.task_id for seed in range(3) for p in TASK.test(60, seed=seed)}
    test_prompts = {p.prompt for seed in range(3) for p in TASK.test(60, seed=seed)}
    assert not train & test
    assert not test_prompts & {p.prompt for p in TASK.train(200)}


def test_extract_code_and_body_completion():
    assert extract_code("Here:\n```python\nx = 1\n```\nDone") == "x = 1\n"
    assert extract_code("no fence") == "no fence"
