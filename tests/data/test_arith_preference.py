"""arith-preference: arith's problems and prompts, the correct solution chosen, a consistently wrong one rejected."""

import random
import re

import pytest

from loralab.data import MathProblem, PreferenceRecord, build_preference_dataset
from loralab.data.tasks import TASKS, ArithPreferenceTask, ArithTask, extract_answer, get_task
from loralab.data.tasks.arith.answers import extract_strict_answer
from loralab.data.tasks.arith_preference import wrong_solution
from loralab.errors import DataError

EQUATION = re.compile(r"(\d+) ([-+*/]) (\d+) = (\d+)")
APPLY = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b, "/": lambda a, b: a // b}


@pytest.mark.parametrize("level", [1, 2, 3])
def test_prompt_and_chosen_are_arith_and_rejected_is_wrong_in_its_last_step(level):
    task, arith = ArithPreferenceTask(level), ArithTask(level)
    problems = task.train(500, seed=4)
    assert problems == arith.train(500, seed=4)
    kinds = set()
    for problem in problems:
        record = task.to_record(problem)
        assert isinstance(record, PreferenceRecord) and record.history == ()
        assert (record.prompt, record.chosen) == (arith.to_record(problem).prompt, arith.to_record(problem).response)
        right, wrong = record.chosen.split("\n"), record.rejected.split("\n")
        assert len(wrong) == len(right) and wrong[:-2] == right[:-2]  # the earlier steps are untouched
        claimed = int(re.fullmatch(r"#### (\d+)", wrong[-1])[1])
        assert claimed != problem.answer
        assert extract_answer(record.rejected) == extract_strict_answer(record.rejected) == claimed
        (before,), (after,) = EQUATION.findall(right[-2])[-1:], EQUATION.findall(wrong[-2])[-1:]
        assert int(after[3]) == claimed  # the last equation and the #### line agree
        assert (after[0], after[2]) == (before[0], before[2])  # same operands
        assert right[-2].replace(" ".join(before[:3]) + " = " + before[3], "") == wrong[-2].replace(
            " ".join(after[:3]) + " = " + after[3], ""
        )  # only the equation changed in that line
        if after[1] != before[1]:
            kinds.add("operation")
            assert APPLY[after[1]](int(after[0]), int(after[2])) == claimed
        else:
            kinds.add("slip")
            assert claimed - problem.answer in {-10, -2, -1, 1, 2, 10}
    assert kinds == {"operation", "slip"}


def test_deterministic_for_a_seed_and_varied_across_seeds():
    problems = ArithTask(2).train(200, seed=1)
    first = [ArithPreferenceTask(2).to_record(p) for p in problems]
    assert first == [ArithPreferenceTask(2).to_record(p) for p in problems]
    other = [ArithPreferenceTask(2, mistake_seed=1).to_record(p) for p in problems]
    assert [r.chosen for r in other] == [r.chosen for r in first]
    assert sum(a.rejected != b.rejected for a, b in zip(first, other)) > 50


def test_test_items_are_arith_problems_for_the_arith_evaluation():
    task = get_task("arith-preference", level=3, test_percent=30)
    items = task.test(40, seed=7)
    assert items == ArithTask(3, test_percent=30).test(40, seed=7)
    assert all(isinstance(item, MathProblem) and item.level == 3 for item in items)


def test_a_solution_without_an_equation_slips_its_final_answer():
    problem = MathProblem("How many?", "Count them.\n#### 0", 0)
    wrong = wrong_solution(problem, random.Random(0))
    assert wrong.split("\n")[0] == "Count them." and extract_strict_answer(wrong) in {1, 2, 10}


def test_registered_with_a_description():
    assert TASKS["arith-preference"] is ArithPreferenceTask
    task = get_task("arith-preference", level=2)
    assert task.name == "arith-preference" and task.level == 2 and task.description
    with pytest.raises(DataError, match=r"no level 4"):
        get_task("arith-preference", level=4)


def test_records_build_into_a_preference_dataset(smol_tokenizer):
    task = get_task("arith-preference")
    records = [task.to_record(problem) for problem in task.train(8, seed=0)]
    dataset = build_preference_dataset(records, smol_tokenizer, max_length=256)
    assert len(dataset) == 8 and dataset.stats.dropped == 0
    for item in dataset:
        assert item["chosen"].input_ids != item["rejected"].input_ids
