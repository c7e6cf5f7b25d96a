"""Unbiased pass@k (Chen et al. 2021, "Evaluating Large Language Models Trained on Code").

With ``n`` samples of which ``c`` pass, the probability that at least one of
``k`` samples drawn without replacement passes is

    pass@k = 1 - C(n-c, k) / C(n, k) = 1 - prod_{i=n-c+1}^{n} (1 - k / i),

computed as the product (no huge binomials). It is 1 when n - c < k.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from loralab.errors import ConfigError


def pass_at_k(n: int, c: int, k: int) -> float:
    """pass@k of one problem with ``n`` samples, ``c`` correct (0 <= c <= n, 1 <= k <= n)."""
    if not 0 <= c <= n:
        raise ConfigError(f"pass@k needs 0 <= correct <= samples, got correct={c}, samples={n}.")
    if not 1 <= k <= n:
        raise ConfigError(f"pass@{k} needs 1 <= k <= samples ({n}); draw more samples or lower k.")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def mean_pass_at_k(counts: Sequence[tuple[int, int]], k: int) -> tuple[float, float]:
    """Mean pass@k over problems given ``(n, c)`` per problem, and its standard error (std / sqrt(P))."""
    if not counts:
        raise ConfigError("pass@k needs at least one problem.")
    values = [pass_at_k(n, c, k) for n, c in counts]
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    variance = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return mean, math.sqrt(variance / len(values))
