"""Standard errors of the reported means."""

from __future__ import annotations

import math
from collections.abc import Sequence


def proportion_stderr(p: float, n: int) -> float:
    """Standard error of an accuracy ``p`` over ``n`` independent items: sqrt(p (1 - p) / n)."""
    return math.sqrt(p * (1.0 - p) / n) if n > 0 else float("nan")


def mean_stderr(values: Sequence[float]) -> float:
    """Standard error of the mean: sample standard deviation / sqrt(n) (0 for a single value)."""
    n = len(values)
    if n < 2:
        return 0.0
    mean = sum(values) / n
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n)
