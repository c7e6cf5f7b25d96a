"""The arith generator: reproducible, disjoint splits, and every answer right."""

import re

import pytest

from loralab.data import InstructionRecord
from loralab.data.tasks import ArithTask, extract_answer
from loralab.errors import DataError

EQUATION = re.compile(r"(-?\d+) ([-+*/]) (-?\d+) = (-?\d+)")
APPLY = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b, "/": lambda a, b: a / b}
STEPS = {1: (1, 1), 2: (2, 2), 3: (3, 4)}


@pytest.mark.parametrize("level", [1, 2, 3])
def test_every_answer_is_right(level):
    """Each equation is recomputed, uses only numbers from the question or earlier results, and ends at the answer."""
    for problem in ArithTask(level).train(150, seed=3) + ArithTask(level).test(50, seed=3):
        lines = problem.solution.split("\n")
        assert lines[-1] == f"#### {problem.answer}"
        equations = [EQUATION.search(line) for line in lines[:-1]]
        assert all(equations), problem.solution
        low, high = STEPS[level]
        assert low <= len(equations) <= high
        known = {int(n) for n in re.findall(r"\d+", problem.question)}
        for match in equations:
            a, op, b, result = int(match[1]), match[2], int(match[3]), int(match[4])
            assert APPLY[op](a, b) == result, match[0]
            assert a in known and b in known, (match[0], problem.question)
            known.add(result)
        assert int(equations[-1][4]) == problem.answer
        assert problem.answer >= 0 and problem.level == level
        assert extract_answer(problem.solution) == problem.answer


def test_level_one_is_one_short_line():
    for problem in ArithTask(1).train(100):
        assert problem.solution.count("\n") == 1
        assert problem.answer <= 100


@pytest.mark.parametrize("level", [1, 2, 3])
def test_same_seed_same_problems_different_seed_different(level):
    task = ArithTask(level)
    assert task.train(40, seed=1) == task.train(40, seed=1)
    assert task.test(20, seed=1) == ArithTask(level).test(20, seed=1)
    assert task.train(40, seed=1) != task.train(40, seed=2)
    assert task.train(10, seed=1) == task.train(40, seed=1)[:10]


@pytest.mark.parametrize("level", [1, 2, 3])
def test_train_and_test_are_disjoint_across_seeds(level):
    task = ArithTask(level)
    train = {p.question for seed in range(3) for p in task.train(300, seed=seed)}
    test = {p.question for seed in range(3) for p in task.test(100, seed=seed)}
    assert len(task.train(300)) == len({p.question for p in task.train(300)})
    assert not train & test


def test_to_record_is_question_and_solution():
    problem = ArithTask(2).train(1)[0]
    assert ArithTask(2).to_record(problem) == InstructionRecord(problem.question, problem.solution)


def test_unknown_level():
    with pytest.raises(DataError, match=r"no level 4.*\[1, 2, 3\]"):
        ArithTask(level=4)


@pytest.mark.parametrize("n", [-1, 2.5, "10"])
def test_bad_count(n):
    with pytest.raises(DataError, match="non-negative integer"):
        ArithTask().train(n)
