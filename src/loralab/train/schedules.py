"""Learning-rate schedules: a multiplier of the base learning rate at each optimiser step.

With w warmup steps and T total steps, step t (0-based) gets
- warmup (t < w): (t + 1) / w — full rate on step w − 1, no step wasted at rate 0;
- then, with progress q = (t − w) / max(1, T − w) in [0, 1]:
  ``cosine`` m + (1 − m) · ½ (1 + cos πq), ``linear`` m + (1 − m)(1 − q), ``constant`` 1,
  where m = ``min_ratio`` (the floor, as a fraction of the base rate).
"""

from __future__ import annotations

import math
from typing import Callable

from loralab.errors import ConfigError

Schedule = Callable[[int], float]

_DECAYS: dict[str, Callable[[float], float]] = {
    "cosine": lambda q: 0.5 * (1.0 + math.cos(math.pi * q)),
    "linear": lambda q: 1.0 - q,
    "constant": lambda q: 1.0,
}
SCHEDULES = tuple(_DECAYS)


def lr_multiplier(name: str, total_steps: int, warmup_steps: int = 0, min_ratio: float = 0.0) -> Schedule:
    """The schedule ``name`` as a function step → multiplier (see the module docstring)."""
    if name not in _DECAYS:
        raise ConfigError(f"schedule must be one of {list(SCHEDULES)}, got {name!r}")
    if total_steps < 1 or warmup_steps < 0:
        raise ConfigError(f"need total_steps ≥ 1 and warmup_steps ≥ 0, got {total_steps} and {warmup_steps}")
    if not 0.0 <= min_ratio <= 1.0:
        raise ConfigError(f"min_lr_ratio must be in [0, 1], got {min_ratio}")
    decay = _DECAYS[name]

    def multiplier(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_ratio + (1.0 - min_ratio) * decay(progress)

    return multiplier
