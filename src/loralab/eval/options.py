"""Settings shared by every evaluation task."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from loralab.errors import ConfigError


@dataclass(frozen=True)
class EvalOptions:
    """``limit``: items per task (problems, passages, multiple-choice items, or paragraphs of ``ppl:``/``kl:`` files).

    Generation: ``max_new_tokens``, ``batch_size``; code tasks draw ``samples`` completions per
    problem at ``temperature``/``top_p`` and report pass@1 and pass@``k`` (k <= samples), run with
    ``timeout`` seconds and ``memory_mb`` per program on ``workers`` processes.
    Text: ``window`` tokens per perplexity/KL window, ``score_batch_size`` windows per forward pass,
    ``documents``: passages per text task (``source-ppl``, ``source-kl``, ``ppl:``, ``kl:``; default ``limit``).
    Preference pairs (``arith-preference``, ``pref:``): ``beta`` scales the implicit rewards, as DPO's β.
    ``task_options``: per built-in data task, the options it is built with (``{"arith": {"level": 2}}``), as
    ``data.task_options`` in a recipe; ``source-text`` serves ``source-ppl`` and ``source-kl``.
    """

    limit: int | None = None
    seed: int = 0
    # finished rows leave a batch, so large batches cost nothing extra: 200 arith problems of SmolLM2-135M
    # (2-core AVX2 CPU, fp32) take 59 s in one batch against 88 s in batches of 64
    batch_size: int = 256
    max_new_tokens: int = 192  # a batch waits for its longest row; 192 kept every correct arith answer of 256
    samples: int = 5
    temperature: float = 0.8
    top_p: float = 0.95
    k: int = 5
    timeout: float = 10.0
    memory_mb: int = 1024
    workers: int = 2
    window: int = 256
    score_batch_size: int = 4
    documents: int | None = None
    beta: float = 0.1
    progress: bool = True
    task_options: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.limit is not None and (isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit < 1):
            raise ConfigError(f"limit must be a positive integer (or None for every item), got {self.limit!r}.")
        for name in ("batch_size", "max_new_tokens", "samples", "k", "workers", "score_batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}.")
        if self.k > self.samples:
            raise ConfigError(f"pass@k needs k <= samples; got k={self.k}, samples={self.samples}.")
        if self.documents is not None and (isinstance(self.documents, bool) or not isinstance(self.documents, int) or self.documents < 1):
            raise ConfigError(f"documents must be a positive integer (or None for limit), got {self.documents!r}.")
        if self.window < 2:
            raise ConfigError(f"window must be at least 2 tokens, got {self.window}.")
        # NaN fails every comparison, so each range is written as what must hold
        for name, ok, allowed in (("temperature", 0 <= self.temperature < math.inf, "a finite number ≥ 0 (0: greedy)"),
                                  ("top_p", 0 < self.top_p <= 1, "in (0, 1]"),
                                  ("beta", 0 < self.beta <= 100, "in (0, 100]"),
                                  ("timeout", 0 < self.timeout < math.inf, "a finite number of seconds > 0"),
                                  ("memory_mb", self.memory_mb >= 64, "a whole number ≥ 64 (MiB per program)"),
                                  ("seed", 0 <= self.seed < 2**32, "a whole number in [0, 2**32)")):  # fmt: skip
            if not ok:
                raise ConfigError(f"{name} must be {allowed}, got {getattr(self, name)!r}.")
        _check_task_options(self.task_options)

    def options_of(self, data_task: str) -> dict:
        """The options to build built-in data task ``data_task`` with (``{}``: its defaults)."""
        return dict(self.task_options.get(data_task) or {})

    def take(self, items: list) -> list:
        """The first ``limit`` items (all when limit is None)."""
        return items if self.limit is None else items[: self.limit]

    def take_documents(self, documents: list) -> list:
        """The first ``documents`` documents of a text task (``limit`` when it is None)."""
        return self.take(documents) if self.documents is None else documents[: self.documents]


def _check_task_options(task_options: object) -> None:
    """ConfigError unless ``task_options`` maps built-in data task names to options each task accepts."""
    if not isinstance(task_options, dict):
        raise ConfigError(f"task_options must map task names to their options ({{arith: {{level: 2}}}}), got {task_options!r}.")
    if not task_options:
        return
    from loralab.data.tasks import TASKS, get_task
    from loralab.errors import LoraLabError

    for name, options in task_options.items():
        if name not in TASKS:
            raise ConfigError(f"task_options: {name!r} is no built-in task; those with options: {', '.join(sorted(TASKS))}.")
        if not isinstance(options, dict):
            raise ConfigError(f"task_options.{name}: a mapping of option to value ({{level: 2}}), got {options!r}.")
        try:
            get_task(name, **options)
        except LoraLabError as error:
            raise ConfigError(f"task_options.{name}: {error}") from None
