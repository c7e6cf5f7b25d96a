"""extract_answer on the ways models phrase a final answer."""

import pytest

from loralab.data.tasks import extract_answer, is_correct

PHRASINGS = [
    ("#### 42", 42),
    ("Tom has 3 + 5 = 8 apples now.\n#### 8", 8),
    ("The answer is 42.", 42),
    ("answer: $1,234", 1234),
    ("The final answer is: 1,000,000 dollars", 1_000_000),
    ("So x = 42", 42),
    ("**42**", 42),
    ("The total is **17** apples, from 3 boxes.", 17),
    ("The answer is -7.", -7),
    ("It is −12 degrees colder.", -12),
    ("42 apples", 42),
    ("She has 12 apples and buys 30, so 42 apples", 42),
    ("First 3 * 4 = 12, then 12 + 5 = 17.", 17),
    ("The answer is 5. We checked with 3 other methods.", 5),
    ("#### 9\nI used 3 steps.", 9),
    ("Step 1: 20 - 4 = 16\n#### 16\nThe answer is 16", 16),
    ("Answer: 3.0", 3),
    ("The answer is $12.", 12),
    ("$$\\boxed{256}$$ after 2 steps", 256),
    ("10-3=7", 7),
    ("Total = 1,250 meters", 1250),
    ("ANSWER IS 64", 64),
    ("The numbers 3,4 and 5", 5),
    ("There is no number here.", None),
    ("", None),
    ("The answer is 2.5 liters", None),
]


@pytest.mark.parametrize(("text", "expected"), PHRASINGS)
def test_phrasings(text, expected):
    assert extract_answer(text) == expected


def test_is_correct():
    assert is_correct("so the answer is 1,024.", 1024)
    assert not is_correct("so the answer is 1,023.", 1024)
    assert not is_correct("no idea", 0)
