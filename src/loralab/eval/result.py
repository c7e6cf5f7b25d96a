"""One measured number of an evaluation, with what it takes to read and compare it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class TaskResult:
    """``value`` of ``metric`` on ``task`` over ``n`` items, with its standard error (None if not defined).

    ``domain`` is ``"target"`` (what fine-tuning should teach: arith, pycode, GSM8K, HumanEval)
    or ``"source"`` (what it may forget: held-out prose, KL to the base, multiple choice).
    ``higher_is_better`` orients differences in comparisons; ``seconds`` is the task's wall time
    (shared by all metrics of one task); ``details`` holds extra numbers and a few examples.
    """

    task: str
    metric: str
    value: float
    stderr: float | None
    n: int
    seconds: float
    domain: str = "target"
    higher_is_better: bool = True
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record."""
        return asdict(self)
