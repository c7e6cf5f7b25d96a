import math

import pytest

from loralab.eval.diversity import distinct_n, distinct_solutions
from loralab.eval.stats import proportion_stderr
from loralab.eval.tasks.math_task import score_answers


def test_answers_are_extracted_and_compared():
    outputs = [
        "She has 5 + 3 = 8 apples.\n#### 8",
        "First 12, then 30. The answer is 42.",
        "It costs $1,250 in total",
        "I am not sure.",
        "#### 7.5",
    ]
    assert score_answers(outputs, [8, 41, 1250, 0, 7]) == [True, False, True, False, False]


def test_strict_match_reads_only_the_training_format():
    from loralab.data.tasks.arith import extract_strict_answer

    assert extract_strict_answer("5 + 3 = 8 apples.\n#### 8") == 8
    assert extract_strict_answer("#### 1,250") == 1250
    assert extract_strict_answer("#### -3\nmore text #### 12 and 13") == 12  # the last marker
    assert extract_strict_answer("The answer is 8.") is None  # right number, wrong format
    assert extract_strict_answer("#### seven") is None
    assert extract_strict_answer("#### 7.5") is None


def test_accuracy_standard_error():
    assert proportion_stderr(0.25, 4) == pytest.approx(math.sqrt(0.25 * 0.75 / 4))
    assert proportion_stderr(1.0, 10) == 0.0


def test_diversity_by_hand():
    samples = ["a b a", "a  b a ", "c"]
    assert distinct_solutions(samples) == 2  # the first two differ only in whitespace
    assert distinct_n(samples, 1) == pytest.approx(3 / 7)  # tokens a b a a b a c -> {a, b, c}
    assert distinct_n(samples, 2) == pytest.approx(2 / 4)  # (a b) (b a) (a b) (b a)
    assert distinct_n(samples, 4) == 0.0
