import math

import pytest

from loralab.errors import ConfigError
from loralab.eval import mean_pass_at_k, pass_at_k


def test_pass_at_k_matches_binomials_by_hand():
    # n=5 samples, c=2 correct: 1 - C(3,k)/C(5,k)
    assert pass_at_k(5, 2, 1) == pytest.approx(1 - 3 / 5)  # 0.4
    assert pass_at_k(5, 2, 2) == pytest.approx(1 - 3 / 10)  # C(3,2)=3, C(5,2)=10
    assert pass_at_k(5, 2, 5) == 1.0  # n - c = 3 < 5
    assert pass_at_k(5, 0, 3) == 0.0
    assert pass_at_k(200, 13, 10) == pytest.approx(1 - math.comb(187, 10) / math.comb(200, 10), rel=1e-12)


def test_mean_over_problems_and_stderr():
    mean, stderr = mean_pass_at_k([(5, 2), (5, 5), (5, 0)], 1)
    values = [0.4, 1.0, 0.0]
    assert mean == pytest.approx(sum(values) / 3)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / 2)
    assert stderr == pytest.approx(sd / math.sqrt(3))


@pytest.mark.parametrize("n, c, k", [(5, 6, 1), (5, -1, 1), (5, 2, 0), (5, 2, 6)])
def test_bad_counts(n, c, k):
    with pytest.raises(ConfigError):
        pass_at_k(n, c, k)
